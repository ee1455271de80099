/**
 * kcp-sys endpoints (daemon/peer/easytier/kcp-endpoint.ts) as simulator nodes, with the application
 * on top: a Source opens `flows` connections to the other node and writes a seeded payload on each as
 * fast as the endpoint takes it (a proxy splicing a fast TCP client), then half-closes; a Sink accepts
 * them and reads everything at once (a fast TCP server), checking the bytes.
 *
 * The sink's endpoint stands in for EasyTier's: the same ikcp settings (kcp-envelope.ts ET_KCP) and
 * ikcp's timing, which is what the source's sender meets: ACKs leave on the acceptor's 10 ms update,
 * batched, never at once. A rate-limited link with a short drop-tail queue in front of it models
 * EasyTier's UDP socket under a sender that outruns its reader.
 */
import { EtKcpEndpoint, type KcpConnId } from '../../daemon/peer/easytier/kcp-endpoint.js';
import type { Rng, SimEndpoint } from './world.js';

/** Node ids double as EasyTier peer ids: the world's node 0 is peer PEER_BASE, and so on. */
export const PEER_BASE = 0x100;

abstract class EtKcpNode implements SimEndpoint {
  abstract readonly ep: EtKcpEndpoint;
  input(datagram: Uint8Array, now: number, from: number): void {
    this.ep.input(PEER_BASE + from, datagram, now);
    this.react(now);
  }
  pollTransmit(): { data: Uint8Array; to: number } | null {
    const o = this.ep.pollTransmit();
    return o ? { data: o.payload, to: o.to - PEER_BASE } : null;
  }
  pollTimeout(): number {
    return this.ep.pollTimeout();
  }
  handleTimeout(now: number): void {
    this.ep.handleTimeout(now);
    this.react(now);
  }
  abstract react(now: number): void;
}

const CHUNK = 64 * 1024;

export class EtKcpSource extends EtKcpNode {
  readonly ep: EtKcpEndpoint;
  readonly payloads: Uint8Array[] = [];
  readonly closed = new Map<KcpConnId, string>();
  private readonly sent = new Map<KcpConnId, number>();
  private readonly payloadOf = new Map<KcpConnId, Uint8Array>();

  constructor(me: number, private readonly peer: number, rng: Rng, flows: number, bytes: number) {
    super();
    this.ep = new EtKcpEndpoint('src', PEER_BASE + me);
    for (let i = 0; i < flows; i++) this.payloads.push(rng.bytes(bytes));
  }

  /** Opens every flow (call once the world exists, at its start). */
  start(now: number): void {
    this.payloads.forEach((p, i) => {
      const id = this.ep.connect(PEER_BASE + this.peer, { src: { addr: 0x0a000001, port: 40000 + i }, dst: { addr: 0x0a000002, port: 5201 } }, now);
      this.payloadOf.set(id, p);
    });
  }

  react(now: number): void {
    for (let e = this.ep.pollEvent(); e; e = this.ep.pollEvent()) {
      if (e.type === 'connected' || e.type === 'writable') this.pump(e.id, now);
      else if (e.type === 'closed') this.closed.set(e.id, e.reason);
      else if (e.type === 'readable') this.ep.read(e.id, new Uint8Array(CHUNK)); // the sink sends nothing
    }
  }

  private pump(id: KcpConnId, now: number): void {
    const p = this.payloadOf.get(id)!;
    let at = this.sent.get(id) ?? 0;
    while (at < p.length) {
      const n = this.ep.write(id, p.subarray(at, at + CHUNK), now);
      if (n === 0) break;
      at += n;
    }
    this.sent.set(id, at);
    if (at === p.length) this.ep.closeWrite(id);
  }
}

export class EtKcpSink extends EtKcpNode {
  readonly ep: EtKcpEndpoint;
  /** Bytes received per flow, in the order flows were accepted, keyed by the source port. */
  readonly received = new Map<number, Uint8Array[]>();
  readonly ended = new Set<number>();
  bytes = 0;
  private readonly port = new Map<KcpConnId, number>();
  private readonly buf = new Uint8Array(CHUNK);

  constructor(me: number) {
    super();
    this.ep = new EtKcpEndpoint('dst', PEER_BASE + me);
  }

  react(): void {
    for (let e = this.ep.pollEvent(); e; e = this.ep.pollEvent()) {
      if (e.type === 'accepted') {
        this.port.set(e.id, e.connData.src.port);
        this.received.set(e.connData.src.port, []);
      } else if (e.type === 'readable') {
        const chunks = this.received.get(this.port.get(e.id)!)!;
        for (let n = this.ep.read(e.id, this.buf); n > 0; n = this.ep.read(e.id, this.buf)) {
          chunks.push(this.buf.slice(0, n));
          this.bytes += n;
        }
      } else if (e.type === 'eof') {
        this.ended.add(this.port.get(e.id)!);
        this.ep.closeWrite(e.id);
      }
    }
  }
}
