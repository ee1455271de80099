/**
 * Flows the proxy chose not to carry (the peer refuses KCP, or the proxy is off for it) still get a
 * row in the proxy table, transport Tcp, so a user can see the fallback and why. They are followed
 * only on the outbound side, cheaply: a flow-key lookup per outbound TCP packet while any is tracked
 * (no allocation for IPv4), counting bytes and closing the row on the app's FIN or RST.
 */
import { FlowKeyMap, type StoredFlowKey } from '../intercept/flow-key-map.js';
import { readTcpFlowKey, TcpFlowKey } from '../packet/flow-key.js';
import { TCP_FIN, TCP_RST } from '../packet/tcp.js';
import type { FlowEntry, FlowTable } from './flow-table.js';

interface Tracked {
  readonly entry: FlowEntry;
  /** Set once stored. */
  key: StoredFlowKey | null;
}

export class PlainFlowTracker {
  private readonly flows = new FlowKeyMap<Tracked>();
  private readonly key = new TcpFlowKey();

  /** Follows the flow of this SYN; false when it is not a TCP flow packet (nothing to follow). */
  track(syn: Uint8Array, entry: FlowEntry): boolean {
    if (!readTcpFlowKey(syn, this.key)) return false;
    const tracked: Tracked = { entry, key: null };
    tracked.key = this.flows.set(this.key, tracked);
    return true;
  }

  /** Whether the flow of this outbound packet (e.g. a retransmitted SYN) is already followed. */
  isTracked(pkt: Uint8Array): boolean {
    return this.flows.size !== 0 && readTcpFlowKey(pkt, this.key) && this.flows.get(this.key) !== undefined;
  }

  /** An outbound packet that was not proxied. */
  observe(pkt: Uint8Array, table: FlowTable, now: number): void {
    const k = this.key;
    if (this.flows.size === 0 || !readTcpFlowKey(pkt, k)) return;
    const tracked = this.flows.get(k);
    if (!tracked) return;
    tracked.entry.counters.txBytes += k.tcp.payloadLength;
    if (k.flags & (TCP_FIN | TCP_RST)) {
      table.close(tracked.entry, now);
      this.flows.delete(tracked.key!);
    }
  }
}
