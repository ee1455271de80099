/**
 * Flows the proxy chose not to carry (the peer refuses KCP, or the proxy is off for it) still get a
 * row in the proxy table, transport Tcp, so a user can see the fallback and why. A packet terminator
 * (kernel, smoltcp) follows them only on the outbound side, cheaply: a flow-key lookup per outbound
 * TCP packet while any is tracked (no allocation for IPv4), counting bytes and ending the row on the
 * app's FIN or RST.
 */
import { FlowKeyMap, type StoredFlowKey } from './flow-key-map.js';
import type { PlainRow } from './terminator.js';
import { readTcpFlowKey, TcpFlowKey } from '../packet/flow-key.js';
import { TCP_FIN, TCP_RST } from '../packet/tcp.js';

interface Tracked {
  readonly row: PlainRow;
  /** Set once stored. */
  key: StoredFlowKey | null;
}

export class PlainFlowTracker {
  private readonly flows = new FlowKeyMap<Tracked>();
  private readonly key = new TcpFlowKey();

  /** Follows the flow of this SYN; false when it is not a TCP flow packet (nothing to follow). */
  track(syn: Uint8Array, row: PlainRow): boolean {
    if (!readTcpFlowKey(syn, this.key)) return false;
    const tracked: Tracked = { row, key: null };
    tracked.key = this.flows.set(this.key, tracked);
    return true;
  }

  /** Whether the flow of this outbound packet (e.g. a retransmitted SYN) is already followed. */
  isTracked(pkt: Uint8Array): boolean {
    return this.flows.size !== 0 && readTcpFlowKey(pkt, this.key) && this.flows.get(this.key) !== undefined;
  }

  /** An outbound packet that was not proxied. */
  observe(pkt: Uint8Array): void {
    const k = this.key;
    if (this.flows.size === 0 || !readTcpFlowKey(pkt, k)) return;
    const tracked = this.flows.get(k);
    if (!tracked) return;
    tracked.row.counters.txBytes += k.tcp.payloadLength;
    if (k.flags & (TCP_FIN | TCP_RST)) {
      this.flows.delete(tracked.key!);
      tracked.row.ended();
    }
  }
}
