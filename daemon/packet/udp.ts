/**
 * UDP header (RFC 768): a reusable checked view over buf[start, end) and a plain representation.
 * Checksums use the pseudo-header of the IP header at ipStart in the same buffer.
 */
import { readU16, writeU16 } from './bytes.js';
import { internetChecksum, pseudoHeaderSum } from './checksum.js';
import { PortsView } from './ports-view.js';
import type { PacketError } from './wire-error.js';

export const IPPROTO_UDP = 17;
export const UDP_HEADER_LEN = 8;

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export class UdpView extends PortsView {

  /** The UDP length field must cover the header and fit in buf[start, end). */
  static check(buf: Uint8Array, start = 0, end = buf.length): PacketError | null {
    if (end - start < UDP_HEADER_LEN) return 'truncated';
    const len = readU16(buf, start + 4);
    if (len < UDP_HEADER_LEN) return 'bad-length';
    if (len > end - start) return 'truncated';
    return null;
  }

  wrap(buf: Uint8Array, start = 0, end = buf.length): PacketError | null {
    // `end` comes from the length field: bytes after it in the IP payload are not the datagram's.
    return UdpView.check(buf, start, end) ?? this.bind(buf, start, start + readU16(buf, start + 4));
  }

  get length(): number {
    return readU16(this.buf, this.start + 4);
  }
  get checksum(): number {
    return readU16(this.buf, this.start + 6);
  }
  get payloadStart(): number {
    return this.start + UDP_HEADER_LEN;
  }

  /** A zero checksum means "none" over IPv4 (RFC 768) and is accepted there. */
  verifyChecksum(ipStart: number): boolean {
    if (this.checksum === 0 && this.buf[ipStart]! >> 4 === 4) return true;
    const pseudo = pseudoHeaderSum(this.buf, ipStart, IPPROTO_UDP, this.length);
    return internetChecksum(this.buf, this.start, this.end, pseudo) === 0;
  }
  fillChecksum(ipStart: number): void {
    writeU16(this.buf, this.start + 6, udpChecksum(this.buf, ipStart, this.start, this.end));
  }

  toRepr(): UdpRepr {
    return { srcPort: this.srcPort, dstPort: this.dstPort, payload: this.buf.subarray(this.payloadStart, this.end) };
  }
}

function udpChecksum(buf: Uint8Array, ipStart: number, start: number, end: number): number {
  writeU16(buf, start + 6, 0);
  const sum = internetChecksum(buf, start, end, pseudoHeaderSum(buf, ipStart, IPPROTO_UDP, end - start));
  return sum === 0 ? 0xffff : sum; // a computed 0 is sent as all ones: 0 means "no checksum"
}

export function udpDatagramLength(repr: UdpRepr): number {
  return UDP_HEADER_LEN + repr.payload.length;
}

/** Writes the datagram at out[start] with its checksum (pseudo-header from out[ipStart]); returns its length. */
export function emitUdpDatagram(repr: UdpRepr, out: Uint8Array, start: number, ipStart: number): number {
  const len = UDP_HEADER_LEN + repr.payload.length;
  writeU16(out, start, repr.srcPort);
  writeU16(out, start + 2, repr.dstPort);
  writeU16(out, start + 4, len);
  out.set(repr.payload, start + UDP_HEADER_LEN);
  writeU16(out, start + 6, udpChecksum(out, ipStart, start, start + len));
  return len;
}
