/**
 * The peer protocol (daemon/peer/): the PM header and sealed packets through a session that is up,
 * handshake init/response, RouteSync records, the TCP underlay's length framing; and the carriers'
 * flow frames. All of them document
 * "never throws": a bad packet is dropped (counted), a bad message is null, a bad stream is 'error'.
 */
import { DialStatus, FrameReader, FrameType, decodeOpen, encodeControl, encodeOpen } from '../../../daemon/carrier/flow-frames.js';
import { HandshakeInitiator, HandshakeResponder, derivePsk } from '../../../daemon/peer/handshake.js';
import { decodeRecord, decodeSync, encodeRecord, encodeSync } from '../../../daemon/peer/route-record.js';
import { PeerSession } from '../../../daemon/peer/session.js';
import { FrameReader as TcpFrameReader, MAX_FRAME } from '../../../daemon/peer/underlay/tcp-frames.js';
import { PacketType } from '../../../daemon/peer/wire.js';
import type { Rng } from '../../sim/world.js';
import type { FuzzTarget } from '../engine.js';
import { concat, datagrams, eachPiece, joinDatagrams, withControl } from './split.js';
import { socketAddrOf } from '../../../daemon/packet/flow-key.js';

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

const PSK = derivePsk('fuzz-net', 'fuzz-secret');
const T0 = 1_000_000;

/** Two sessions that completed a real handshake; built once (X25519 is too slow per input). */
interface Pair { a: PeerSession; b: PeerSession; responder: HandshakeResponder; spareInit: Buffer }
let pair: Pair | null = null;

function pairOnce(): Pair {
  if (pair) return pair;
  const responder = new HandshakeResponder(PSK, 2);
  const a = PeerSession.initiate(PSK, 1, 0, T0);
  const b = PeerSession.accept(responder, 2, 0, a.pollTransmit()!, T0);
  if (!b) throw new Error('fuzz setup: the handshake failed');
  a.input(b.pollTransmit()!, T0);
  b.input(a.pollTransmit()!, T0); // the initiator's confirming ping brings B up
  if (a.state !== 'up' || b.state !== 'up') throw new Error('fuzz setup: sessions not up');
  const spare = PeerSession.initiate(PSK, 3, 0, T0).pollTransmit()!;
  pair = { a, b, responder, spareInit: spare };
  return pair;
}

export const peerSessionTarget: FuzzTarget = {
  name: 'peer-session',
  maxLength: 1600,
  corpus(rng: Rng) {
    const { a, spareInit } = pairOnce();
    const sealed = (type: number, n: number): Buffer => a.seal(1, 2, type, 0, 1, rng.bytes(n))!;
    return [
      joinDatagrams([sealed(PacketType.Data, 100), sealed(PacketType.Ping, 8), sealed(PacketType.KcpSrc, 300)]),
      joinDatagrams([sealed(PacketType.Pong, 8), sealed(PacketType.RouteSync, 50)]),
      joinDatagrams([spareInit]),
    ];
  },
  run(input) {
    const { b, responder } = pairOnce();
    for (const d of datagrams(input)) {
      const plain = b.input(d, T0 + 1000);
      check(plain === null || plain.length <= d.length, 'payload longer than the packet');
      if (d.length > 8 && d[8] === PacketType.Handshake) {
        const s = PeerSession.accept(responder, 2, 0, d, T0 + 1000);
        if (s) s.close('fuzz');
      }
    }
    while (b.pollTransmit() !== undefined);
    while (b.pollEvent() !== undefined);
    check(b.state === 'up', `the session went ${b.state} on garbage`);
  },
};

// ---------------------------------------------------------------- handshake

let initiator: HandshakeInitiator | null = null;
let responder: HandshakeResponder | null = null;

export const handshakeTarget: FuzzTarget = {
  name: 'handshake',
  maxLength: 200,
  corpus() {
    initiator = new HandshakeInitiator(PSK, 7, T0);
    responder = new HandshakeResponder(PSK, 9);
    const answer = new HandshakeResponder(PSK, 9).accept(initiator.message, T0);
    if (typeof answer === 'string') throw new Error(`fuzz setup: init rejected (${answer})`);
    return [withControl(0, initiator.message), withControl(1, answer.response)];
  },
  run(input) {
    if (input.length === 0) return;
    const body = input.subarray(1);
    if ((input[0]! & 1) === 0) {
      const r = responder!.accept(body, T0);
      check(typeof r === 'string' || r.response.length === 92, 'a response of the wrong size');
    } else {
      const r = initiator!.complete(body);
      check(r === null || r.peerId >= 0, 'bad peer id');
    }
  },
};

// ---------------------------------------------------------------- route records

export const routeRecordTarget: FuzzTarget = {
  name: 'route-record',
  maxLength: 1300,
  corpus(rng: Rng) {
    const rec = (peerId: number, ipv6: boolean): Buffer => encodeRecord({
      peerId, version: rng.next(), timestamp: 1.7e12 + rng.int(1e6), hostname: `node-${peerId}-ü`, ipv4: rng.next(), prefix: 24,
      proxyCidrs: ['192.168.1.0/24', '10.9.0.0/16'], features: 3,
      neighbours: [{ peerId: 2, cost: 1 }, { peerId: 3, cost: 7 }],
      ...(ipv6 ? { ipv6: { address: rng.bytes(16), prefix: 64 } } : {}),
    });
    const records = [rec(1, false), rec(5, true), rec(9, false)];
    return [...encodeSync(records).map((m) => withControl(0, m)), withControl(1, records[1]!), withControl(1, records[0]!)];
  },
  run(input) {
    if (input.length === 0) return;
    const body = input.subarray(1);
    const records = (input[0]! & 1) === 0 ? decodeSync(body) : [decodeRecord(body)];
    for (const r of records ?? []) {
      if (r === null) continue;
      check(r.peerId !== 0 && r.prefix <= 32 && Number.isFinite(r.timestamp), 'a record that should have been refused');
      check(r.ipv6 === undefined || (r.ipv6.address.length === 16 && r.ipv6.prefix <= 128), 'bad IPv6 tail');
    }
  },
};

// ---------------------------------------------------------------- flow frames

export const flowFramesTarget: FuzzTarget = {
  name: 'flow-frames',
  maxLength: 2000,
  corpus(rng: Rng) {
    const data = (n: number): Uint8Array => {
      const f = new Uint8Array(3 + n);
      f[0] = FrameType.Data;
      f[1] = n >> 8;
      f[2] = n & 0xff;
      f.set(rng.bytes(n), 3);
      return f;
    };
    const stream = concat([
      encodeOpen({ src: socketAddrOf('10.0.0.1', 1000)!, dst: socketAddrOf('fd00::2', 80)!, optimistic: true }),
      encodeControl(FrameType.Status, DialStatus.Connected), data(500), data(0), data(40),
      encodeControl(FrameType.Fin), encodeControl(FrameType.Rst),
    ]);
    return [withControl(0x80, stream), withControl(4, stream), withControl(24, stream)];
  },
  run(input) {
    const reader = new FrameReader();
    let dataBytes = 0;
    eachPiece(input, (piece) => {
      reader.push(piece);
      for (let f = reader.next(); f !== null; f = reader.next()) {
        if (f === 'error') return false;
        if (f.type === FrameType.Data) dataBytes += f.payload.length;
        else if (f.type === FrameType.Open) decodeOpen(f.payload);
      }
      return true;
    });
    check(dataBytes <= input.length, 'more DATA bytes than were pushed');
  },
};

// ---------------------------------------------------------------- TCP underlay framing

export const tcpFramesTarget: FuzzTarget = {
  name: 'tcp-frames',
  maxLength: 3000,
  corpus(rng: Rng) {
    const frame = (n: number): Uint8Array => {
      const f = new Uint8Array(4 + n);
      f[0] = n & 0xff;
      f[1] = n >> 8;
      f.set(rng.bytes(n), 4);
      return f;
    };
    const stream = concat([frame(100), frame(0), frame(1200), frame(7)]);
    return [withControl(0x80, stream), withControl(3, stream), withControl(60, stream)];
  },
  run(input) {
    // A listener's first-frame limit for odd lengths (a handshake init is 16 + 96 bytes), MAX_FRAME otherwise.
    const limit = (input.length & 1) === 1 ? 112 : MAX_FRAME;
    const reader = new TcpFrameReader(limit);
    let bytes = 0;
    eachPiece(input, (piece) => reader.feed(Buffer.from(piece.buffer, piece.byteOffset, piece.length), (pkt) => {
      check(pkt.length <= limit, `a frame of ${pkt.length} bytes`);
      bytes += 4 + pkt.length;
    }) && reader.buffered <= 4 + limit);
    check(bytes <= input.length && reader.buffered <= 4 + limit, 'frames or the buffer hold more bytes than were fed or allowed');
  },
};
