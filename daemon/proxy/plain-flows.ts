/**
 * Flows the proxy chose not to carry (the peer refuses KCP, or the proxy is off for it) still get a
 * row in the proxy table, transport Tcp, so a user can see the fallback and why. They are followed
 * only on the outbound side, cheaply: a numeric lookup per outbound TCP packet while any is tracked,
 * counting bytes and closing the row on the app's FIN or RST.
 */
import { readU16, readU32 } from '../packet/bytes.js';
import type { FlowEntry, FlowTable } from './flow-table.js';

const TCP = 6;
const FIN = 0x01;
const RST = 0x04;

export class PlainFlowTracker {
  /** By destination address, then srcPort * 65536 + dstPort. */
  private readonly flows = new Map<number, Map<number, FlowEntry>>();

  track(syn: Uint8Array, entry: FlowEntry): void {
    const at = (syn[0]! & 0x0f) * 4;
    let byPorts = this.flows.get(readU32(syn, 16));
    if (!byPorts) this.flows.set(readU32(syn, 16), (byPorts = new Map()));
    byPorts.set(readU16(syn, at) * 65536 + readU16(syn, at + 2), entry);
  }

  /** Whether the flow of this outbound packet (e.g. a retransmitted SYN) is already followed. */
  isTracked(pkt: Uint8Array): boolean {
    const at = (pkt[0]! & 0x0f) * 4;
    if (this.flows.size === 0 || pkt[0]! >> 4 !== 4 || pkt.length < at + 4) return false;
    return this.flows.get(readU32(pkt, 16))?.has(readU16(pkt, at) * 65536 + readU16(pkt, at + 2)) ?? false;
  }

  /** An outbound packet that was not proxied. */
  observe(pkt: Uint8Array, table: FlowTable, now: number): void {
    if (this.flows.size === 0 || pkt.length < 20 || pkt[0]! >> 4 !== 4 || pkt[9] !== TCP) return;
    const byPorts = this.flows.get(readU32(pkt, 16));
    const at = (pkt[0]! & 0x0f) * 4;
    if (!byPorts || pkt.length < at + 14) return;
    const key = readU16(pkt, at) * 65536 + readU16(pkt, at + 2);
    const entry = byPorts.get(key);
    if (!entry) return;
    entry.counters.txBytes += Math.max(0, readU16(pkt, 2) - at - (pkt[at + 12]! >> 4) * 4);
    if (pkt[at + 13]! & (FIN | RST)) {
      table.close(entry, now);
      byPorts.delete(key);
      if (byPorts.size === 0) this.flows.delete(readU32(pkt, 16));
    }
  }
}
