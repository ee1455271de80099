/**
 * smux frame header: version (u8), cmd (u8), payload length (u16 LE), stream id (u32 LE), then the payload.
 * UPD's payload is consumed (u32 LE) + window (u32 LE).
 */
/** This format's fields are little-endian. */
export { readU32Le as readU32, writeU32Le as writeU32 } from '../../packet/bytes.js';
import { readU32Le as readU32, writeU32Le as writeU32 } from '../../packet/bytes.js';

export const HEADER_SIZE = 8;
export const UPD_PAYLOAD_SIZE = 8;

export const CMD_SYN = 0;
export const CMD_FIN = 1;
export const CMD_PSH = 2;
export const CMD_NOP = 3;
export const CMD_UPD = 4;

export type SmuxVersion = 1 | 2;

export interface SmuxHeader {
  version: number;
  cmd: number;
  length: number;
  sid: number;
}

/** Reads a header at b[o..o+8). The caller ensures 8 bytes are there. */
export function readHeader(b: Uint8Array, o: number, into: SmuxHeader): SmuxHeader {
  into.version = b[o]!;
  into.cmd = b[o + 1]!;
  into.length = b[o + 2]! | (b[o + 3]! << 8);
  into.sid = readU32(b, o + 4);
  return into;
}

/** Writes a header at b[o..o+8) and returns o + 8. */
export function writeHeader(b: Uint8Array, o: number, version: number, cmd: number, length: number, sid: number): number {
  b[o] = version;
  b[o + 1] = cmd;
  b[o + 2] = length & 0xff;
  b[o + 3] = length >>> 8;
  writeU32(b, o + 4, sid);
  return o + HEADER_SIZE;
}

/** Encodes one whole frame into a fresh buffer (control paths and tests; the session writes in place). */
export function encodeFrame(version: number, cmd: number, sid: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  writeHeader(out, 0, version, cmd, payload.length, sid);
  out.set(payload, HEADER_SIZE);
  return out;
}
