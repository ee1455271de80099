/**
 * A carrier node whose application writes its flows' bytes as fast as the carrier takes them (or at a
 * set rate), and reads and hashes what its peer's flows deliver: the bulk ends of the path-control
 * tests and of bench/kcp-carrier-sim.ts.
 */
import { createHash } from 'node:crypto';
import { FlowEvent, type KcpFlow } from '../../daemon/carrier/kcp/endpoint.js';
import { DialStatus } from '../../daemon/carrier/flow-frames.js';
import { CarrierNode, type HostStalls } from './carrier-node.js';

export class BulkNode extends CarrierNode {
  /**
   * Flows this node writes: their bytes, how many the carrier took, and the bytes/ms offered (0: all at
   * once); `total` (data's length unless set) bytes in all, `data` over and over.
   */
  readonly sending = new Map<KcpFlow, { data: Uint8Array; off: number; rate: number; total?: number }>();
  readonly received = new Map<KcpFlow, { hash: ReturnType<typeof createHash>; bytes: number; fin: boolean; reset: boolean }>();
  /** The most bytes one write() offers: what a socket read hands the daemon's pipe. */
  writeBytes = 16 * 1024;
  constructor(otherId: number, seed: number, fec: boolean, stalls: HostStalls | null) {
    super(otherId, seed, 1_000, { peerDecodesFec: () => fec }, stalls);
  }

  react(now: number): void {
    for (let flow = this.carrier.pollEvent(); flow; flow = this.carrier.pollEvent()) {
      const ev = flow.takeEvents();
      if (ev & FlowEvent.OpenRequest) {
        this.carrier.answer(flow, DialStatus.Connected, now);
        this.received.set(flow, { hash: createHash('sha256'), bytes: 0, fin: false, reset: false });
      }
      const r = this.received.get(flow);
      if (r) {
        for (let c = this.carrier.read(flow); c; c = this.carrier.read(flow)) {
          r.hash.update(c);
          r.bytes += c.length;
        }
        if (ev & FlowEvent.Fin && !r.fin) {
          r.fin = true;
          this.carrier.closeWrite(flow, now);
        }
        if (ev & FlowEvent.Reset) r.reset = true;
      }
    }
    for (const [flow, q] of this.sending) {
      if (flow.status !== DialStatus.Connected) continue;
      const total = q.total ?? q.data.length;
      const offered = q.rate > 0 ? Math.min(total, Math.floor(now * q.rate)) : total;
      while (q.off < offered) {
        const at = q.off % q.data.length;
        const n = Math.min(offered - q.off, this.writeBytes, q.data.length - at);
        if (!this.carrier.write(flow, q.data.subarray(at, at + n), now)) break;
        q.off += n;
      }
      if (q.off === total) {
        this.sending.delete(flow);
        this.carrier.closeWrite(flow, now);
      }
    }
  }
}
