/**
 * Test world for QuicEndpoint: each node is a QuicEndpoint on the deterministic simulator
 * (test/sim/world.ts), plus a small application that sends a payload on each stream, reads what
 * arrives, and hashes both ends. Application reactions run inside input/handleTimeout, so their
 * output is on the wire at the same virtual instant.
 */
import { createHash, type Hash } from 'node:crypto';

import { QUIC_FIN, QUIC_GONE, QuicEndpoint, type QuicEvent, type QuicOptions } from '../../../daemon/carrier/quic/endpoint.js';
import { loadQuicModule } from '../../../daemon/carrier/quic/wasm.js';
import { type LinkParams, type Rng, type SimDatagram, type SimEndpoint, World } from '../../sim/world.js';

/** Peer ids are unrelated to node indexes, like real ones. */
export const peerIdOf = (node: number): number => (0x5eed_0000 + node * 7919) >>> 0;
const nodeOf = (peerId: number): number => (peerId - 0x5eed_0000) / 7919;

/** One direction of one stream. */
export class Outgoing {
  offset = 0;
  finished = false;
  /** The peer acknowledged everything, FIN included. */
  acked = false;
  constructor(readonly payload: Uint8Array, readonly sha: string = sha256(payload)) {}
}

export class Incoming {
  bytes = 0;
  fin = false;
  readonly hash: Hash = createHash('sha256');
  digest?: string;
  /** The bytes themselves, when the node keeps them (`keepBytes`). */
  readonly chunks: Uint8Array[] = [];
}

export interface StreamState {
  conn: number;
  stream: number;
  out?: Outgoing;
  in: Incoming;
  resetCode?: number;
  stoppedCode?: number;
}

const READ_BUF = new Uint8Array(64 * 1024);
/** EasyTier's peer-packet types QuicSrc / QuicDst. */
export const SIDE_INITIATOR = 16;
export const SIDE_ACCEPTOR = 17;

export class QuicNode implements SimEndpoint {
  readonly streams = new Map<string, StreamState>();
  readonly events: QuicEvent[] = [];
  /** What this node sends back on each stream a peer opens (none: receive only). */
  replyFor: ((s: StreamState) => Uint8Array | undefined) | undefined;
  /** Whether a stream finishes its sending side once the payload is written. */
  autoFinish = true;
  /** Keep received bytes (not just their hash) for tests that parse them. */
  keepBytes = false;
  world!: World;
  node = -1;

  /** `ep` may be replaced, to simulate a restart of this node. */
  constructor(public ep: QuicEndpoint) {}

  get peerId(): number {
    return peerIdOf(this.node);
  }

  /** Sim datagrams carry the side flag in a leading byte, as a peer packet carries its type. */
  input(datagram: Uint8Array, now: number, from: number): void {
    if (datagram.length > 0) this.ep.input(peerIdOf(from), datagram.subarray(1), now, datagram[0] === SIDE_INITIATOR);
    this.react();
  }

  pollTransmit(): SimDatagram | null {
    const t = this.ep.pollTransmit();
    if (t === null) return null;
    const framed = new Uint8Array(t.data.length + 1);
    framed[0] = t.fromInitiator ? SIDE_INITIATOR : SIDE_ACCEPTOR;
    framed.set(t.data, 1);
    return { data: framed, to: nodeOf(t.peerId) };
  }

  pollTimeout(): number {
    return this.ep.pollTimeout();
  }

  handleTimeout(now: number): void {
    this.ep.handleTimeout(now);
    this.react();
  }

  state(conn: number, stream: number): StreamState {
    const key = `${conn}/${stream}`;
    let s = this.streams.get(key);
    if (s === undefined) {
      s = { conn, stream, in: new Incoming() };
      this.streams.set(key, s);
    }
    return s;
  }

  /** Opens a stream to `peer` that sends `payload`; null when QUIC can't open one yet. */
  send(peer: number, payload: Uint8Array): StreamState | null {
    const ref = this.ep.openStream(peerIdOf(peer));
    if (ref === null) return null;
    const s = this.state(ref.conn, ref.stream);
    s.out = new Outgoing(payload);
    this.pump(s);
    return s;
  }

  /** Handles every pending event the application cares about. */
  react(): void {
    for (;;) {
      const e = this.ep.pollEvent();
      if (e === null) return;
      this.events.push(e);
      if (!('stream' in e)) continue;
      const s = this.state(e.conn, e.stream);
      switch (e.type) {
        case 'stream-opened': {
          const reply = this.replyFor?.(s);
          if (reply !== undefined) s.out = new Outgoing(reply);
          this.drain(s);
          this.pump(s);
          break;
        }
        case 'readable':
          this.drain(s);
          break;
        case 'writable':
          this.pump(s);
          break;
        case 'finished':
          if (s.out) s.out.acked = true;
          break;
        case 'reset':
          s.resetCode = e.code;
          break;
        case 'stopped':
          s.stoppedCode = e.code;
          break;
      }
    }
  }

  drain(s: StreamState): void {
    for (;;) {
      const n = this.ep.read(s.conn, s.stream, READ_BUF);
      if (n === 0 || n === QUIC_GONE) return;
      if (n === QUIC_FIN) {
        s.in.fin = true;
        s.in.digest = s.in.hash.digest('hex');
        return;
      }
      s.in.hash.update(READ_BUF.subarray(0, n));
      if (this.keepBytes) s.in.chunks.push(READ_BUF.slice(0, n));
      s.in.bytes += n;
    }
  }

  pump(s: StreamState): void {
    const out = s.out;
    if (out === undefined || out.finished) return;
    while (out.offset < out.payload.length) {
      const n = this.ep.write(s.conn, s.stream, out.payload.subarray(out.offset));
      if (n <= 0) return;
      out.offset += n;
    }
    if (this.autoFinish) {
      this.ep.finish(s.conn, s.stream);
      out.finished = true;
    }
  }
}

/** The peer's side of a stream the other node opened (stream ids match across the connection). */
export function peerState(peer: QuicNode, stream: number): StreamState | undefined {
  for (const s of peer.streams.values()) if (s.stream === stream) return s;
  return undefined;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Deterministic payload bytes (fast: one PRNG word per 4 bytes). */
export function payload(rng: Rng, length: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(length / 4));
  for (let i = 0; i < words.length; i++) words[i] = rng.next();
  return new Uint8Array(words.buffer, 0, length);
}

export interface Pair {
  world: World;
  a: QuicNode;
  b: QuicNode;
}

/** Two endpoints linked both ways; `a` connects to `b` and the handshake is run to completion. */
export async function connectedPair(opts: {
  seed: number;
  link?: LinkParams;
  quic?: QuicOptions;
  handshake?: boolean;
}): Promise<Pair> {
  const module = await loadQuicModule();
  const world = new World({ seed: opts.seed });
  const a = new QuicNode(new QuicEndpoint(module, { seed: opts.seed * 2 + 1, ...opts.quic }));
  const b = new QuicNode(new QuicEndpoint(module, { seed: opts.seed * 2 + 2, ...opts.quic }));
  for (const n of [a, b]) {
    n.world = world;
    n.node = world.addNode(n);
  }
  world.linkBoth(a.node, b.node, opts.link ?? { delayMs: 1 });
  if (opts.handshake !== false) {
    a.ep.connect(b.peerId, world.now);
    const r = world.run({ until: () => connectedCount(a) > 0 && connectedCount(b) > 0, maxTime: world.now + 60_000 });
    if (!r.done) throw new Error(`seed ${opts.seed}: handshake did not complete`);
  }
  return { world, a, b };
}

export function connectedCount(n: QuicNode): number {
  return n.events.filter((e) => e.type === 'connected').length;
}
