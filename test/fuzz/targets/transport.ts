/**
 * The kcptun transport cores: KCP segments, FEC shards, the datagram crypt framing, smux frames and
 * snappy (blocks and framing). Each documents "never throws": bad bytes give an error code, an
 * error result, a counted drop or a closed session. Stateful cores get a fresh instance per input,
 * fed a sequence (split.ts), so an input alone reproduces a crash.
 */
import { KCPTUN_CIPHERS } from '../../../daemon/kcptun/config.js';
import { newDatagramCrypt, type DatagramCrypt } from '../../../daemon/transport/crypt/datagram.js';
import { deriveKcptunKey } from '../../../daemon/transport/crypt/kdf.js';
import { FecDecoder } from '../../../daemon/transport/fec/decoder.js';
import { FecEncoder } from '../../../daemon/transport/fec/encoder.js';
import { Kcp, KCP_INPUT_BAD_CMD, KCP_INPUT_OK } from '../../../daemon/transport/kcp/kcp.js';
import {
  IKCP_CMD_ACK, IKCP_CMD_PUSH, IKCP_CMD_WASK, IKCP_CMD_WINS, encodeSegment, parseSegmentHeader,
} from '../../../daemon/transport/kcp/segment.js';
import { CMD_FIN, CMD_NOP, CMD_PSH, CMD_SYN, CMD_UPD, encodeFrame } from '../../../daemon/transport/smux/frame.js';
import { SmuxSession } from '../../../daemon/transport/smux/session.js';
import { decodedLength, decompress, MAX_BLOCK_SIZE, SnappyCompressor } from '../../../daemon/transport/snappy/block.js';
import { SnappyFrameReader, SnappyFrameWriter } from '../../../daemon/transport/snappy/framing.js';
import { TstierError } from '../../../daemon/errors.js';
import type { Rng } from '../../sim/world.js';
import type { FuzzTarget } from '../engine.js';
import { concat, datagrams, eachPiece, joinDatagrams, withControl } from './split.js';

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

// ---------------------------------------------------------------- KCP

const CONV = 0x01020304;

export const kcpTarget: FuzzTarget = {
  name: 'kcp',
  maxLength: 1500,
  corpus(rng: Rng) {
    const seg = (cmd: number, sn: number, data: Uint8Array = new Uint8Array(0), frg = 0): Uint8Array =>
      encodeSegment({ conv: CONV, cmd, frg, wnd: 128, ts: 1000 + sn, sn, una: 0 }, data);
    return [
      joinDatagrams([concat([seg(IKCP_CMD_PUSH, 0, rng.bytes(100)), seg(IKCP_CMD_PUSH, 1, rng.bytes(50))]), seg(IKCP_CMD_PUSH, 2, rng.bytes(10))]),
      joinDatagrams([concat([seg(IKCP_CMD_PUSH, 1, rng.bytes(20), 1), seg(IKCP_CMD_PUSH, 0, rng.bytes(20), 0)])]),
      joinDatagrams([seg(IKCP_CMD_ACK, 0), seg(IKCP_CMD_WASK, 0), seg(IKCP_CMD_WINS, 0)]),
      joinDatagrams([concat([seg(IKCP_CMD_PUSH, 0, rng.bytes(1376))])]),
    ];
  },
  run(input) {
    // Message mode for even lengths (fragments reassembled), stream mode for odd ones.
    const kcp = new Kcp({ conv: CONV, streamMode: (input.length & 1) === 1, sndWnd: 32, rcvWnd: 32 });
    kcp.send(new Uint8Array(3000)); // something in flight, so ACKs and una have work to do
    const dst = new Uint8Array(4096);
    let now = 1000;
    for (const [i, d] of datagrams(input).entries()) {
      const header = parseSegmentHeader(d);
      check(header === null ? d.length < 24 : header.conv >= 0 && header.len >= 0, 'header');
      const code = kcp.input(d, now, i % 3 !== 2);
      check(Number.isInteger(code) && code <= KCP_INPUT_OK && code >= KCP_INPUT_BAD_CMD, `input() returned ${code}`);
      while (kcp.readable()) {
        if (kcp.streamMode) kcp.read(dst);
        else if (kcp.recv() === null) break;
      }
      now += 10;
      kcp.handleTimeout(now);
      for (let t = kcp.pollTransmit(); t !== null; t = kcp.pollTransmit()) kcp.recycleTransmit(t);
    }
    kcp.release();
  },
};

// ---------------------------------------------------------------- FEC

const SHAPES = [undefined, { dataShards: 3, parityShards: 2 }, { dataShards: 10, parityShards: 3 }];

export const fecTarget: FuzzTarget = {
  name: 'fec',
  maxLength: 3000,
  corpus(rng: Rng) {
    const out: Uint8Array[] = [];
    for (const shape of SHAPES.slice(1)) {
      const enc = new FecEncoder({ ...shape!, headerOffset: 0, maxDatagram: 1500 });
      const group: Uint8Array[] = [];
      for (let i = 0; i < shape!.dataShards; i++) {
        const d = new Uint8Array(8 + rng.range(1, 120));
        d.set(rng.bytes(d.length - 8), 8);
        for (const p of enc.encode(d, d.length, i)) group.push(p.slice());
        group.push(d);
      }
      out.push(joinDatagrams(group), joinDatagrams(group.filter((_, i) => i % 3 !== 0)));
    }
    return out;
  },
  run(input) {
    const dec = new FecDecoder(SHAPES[input.length % SHAPES.length]);
    for (const d of datagrams(input)) {
      dec.input(d, 0, d.length);
      for (let r = dec.pollRecovered(); r !== undefined; r = dec.pollRecovered()) check(r.length <= 1500, `recovered ${r.length} bytes`);
    }
  },
};

// ---------------------------------------------------------------- crypt

const KEY = deriveKcptunKey('fuzz');
let crypts: DatagramCrypt[] | null = null;
const cryptsOnce = (): DatagramCrypt[] => (crypts ??= KCPTUN_CIPHERS.map((n) => newDatagramCrypt(n, KEY)));
let cryptBuf = new Uint8Array(0);
const TAIL = 32;

export const cryptTarget: FuzzTarget = {
  name: 'crypt',
  maxLength: 1500,
  corpus(rng: Rng) {
    return cryptsOnce().map((c, i) => {
      const len = c.headerSize + rng.range(0, 200);
      const buf = new Uint8Array(len + c.tailroom);
      buf.set(rng.bytes(len - c.headerSize), c.headerSize);
      const n = c.seal(buf, len);
      return withControl(i, buf.subarray(0, n));
    });
  },
  run(input) {
    if (input.length === 0) return;
    const all = cryptsOnce();
    const c = all[input[0]! % all.length]!;
    const len = input.length - 1;
    // Bytes past len must survive open(): it may only touch the datagram it was given.
    if (cryptBuf.length < len + TAIL) cryptBuf = new Uint8Array(len + TAIL + 2048);
    cryptBuf.set(input.subarray(1));
    cryptBuf.fill(0xa5, len, len + TAIL);
    const r = c.open(cryptBuf, len);
    check(r < 0 ? r >= -3 : r <= len - c.tailroom, `open() returned ${r} for ${len} bytes`);
    for (let i = len; i < len + TAIL; i++) check(cryptBuf[i] === 0xa5, `${c.name}: open() wrote past the datagram`);
  },
};

// ---------------------------------------------------------------- smux

const smuxOut = new Uint8Array(65536);

export const smuxTarget: FuzzTarget = {
  name: 'smux',
  maxLength: 2000,
  corpus(rng: Rng) {
    const out: Uint8Array[] = [];
    for (const v of [1, 2]) {
      const upd = new Uint8Array(8);
      upd[0] = 0x10;
      upd[4] = 0xff;
      const frames = concat([
        encodeFrame(v, CMD_SYN, 3), encodeFrame(v, CMD_PSH, 3, rng.bytes(300)), encodeFrame(v, CMD_NOP, 0),
        encodeFrame(v, CMD_SYN, 5), encodeFrame(v, CMD_UPD, 5, upd), encodeFrame(v, CMD_PSH, 5, rng.bytes(40)),
        encodeFrame(v, CMD_FIN, 3), encodeFrame(v, CMD_FIN, 5),
      ]);
      out.push(withControl(v === 1 ? 0x81 : 0x82, frames), withControl(v === 1 ? 6 : 7, frames));
    }
    return out;
  },
  run(input) {
    if (input.length === 0) return;
    const version = (input[0]! & 1) === 1 ? 1 : 2;
    const s = new SmuxSession('server', { version, maxReceiveBuffer: 4096, maxStreamBuffer: 4096 }, 0);
    let now = 0;
    eachPiece(input, (piece) => {
      s.input(piece, now);
      for (let e = s.pollEvent(); e !== null; e = s.pollEvent()) {
        if (e.type === 'readable') while (s.read(e.sid) !== null);
        if (e.type === 'accept' && e.sid % 2 === 1) s.write(e.sid, smuxOut.subarray(0, 100));
      }
      while (s.pollTransmit(smuxOut) > 0);
      now += 1000;
      s.handleTimeout(now);
    });
    s.inputEnded();
    check(s.isClosed(), 'session open after inputEnded()');
  },
};

// ---------------------------------------------------------------- snappy

export const snappyTarget: FuzzTarget = {
  name: 'snappy',
  maxLength: 4000,
  corpus(rng: Rng) {
    const text = new TextEncoder().encode('the quick brown fox jumps over the lazy dog '.repeat(40));
    const c = new SnappyCompressor();
    const w = new SnappyFrameWriter();
    return [
      withControl(1, c.compress(text).slice()), withControl(3, c.compress(rng.bytes(300)).slice()),
      withControl(5, c.compress(new Uint8Array(2000)).slice()),
      withControl(0x80, concat([w.write(text), w.write(rng.bytes(100))])), withControl(10, w.write(text.subarray(0, 500))),
    ];
  },
  run(input) {
    if (input.length === 0) return;
    if ((input[0]! & 1) === 1) { // a block
      const block = input.subarray(1);
      const r = decompress(block);
      if (r instanceof TstierError) return;
      const hdr = decodedLength(block, 0, block.length, MAX_BLOCK_SIZE);
      check(!(hdr instanceof TstierError) && hdr.length === r.length, 'decoded length differs from the preamble');
      return;
    }
    const reader = new SnappyFrameReader();
    eachPiece(input, (piece) => {
      const r = reader.push(piece);
      if (r instanceof TstierError) return false;
      for (const chunk of r) check(chunk.length <= MAX_BLOCK_SIZE, `a chunk of ${chunk.length} bytes`);
      return true;
    });
  },
};
