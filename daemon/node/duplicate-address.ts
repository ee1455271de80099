/**
 * Two nodes of one network with the same virtual address each receive part of the traffic meant
 * for the other, and nothing else says why. Route sync shows it: another peer's record carries our
 * address. This watch warns once per such peer (naming both peer ids), and notes when it stops.
 * It does not make either let go: both keep the address. Who gets the traffic is already decided
 * deterministically by the route table: each node sends to the nearest claimant, the lower peer id
 * on a tie (and a node to itself).
 */
import type { Logger } from '../log.js';
import { u32ToIpv4 } from '../peer/ipv4-prefix.js';
import type { RouteEntry } from '../peer/route-record.js';
import { formatIpAddress } from '../packet/address.js';

export class DuplicateAddressWatch {
  /** Peers currently seen claiming our address. */
  private readonly claimants = new Set<number>();

  constructor(
    private readonly myPeerId: number,
    /** Our virtual IPv4 as a u32, 0 for none. */
    private readonly myIpv4: number,
    /** Our virtual IPv6 (16 bytes), or null. */
    private readonly myIpv6: Uint8Array | null,
    private readonly log: Logger,
  ) {}

  /** Call after the route table changed. */
  check(routes: readonly RouteEntry[]): void {
    const now = new Set<number>();
    for (const { record: r } of routes) {
      if (r.peerId === this.myPeerId) continue;
      const v4 = this.myIpv4 !== 0 && r.ipv4 === this.myIpv4;
      const v6 = this.myIpv6 !== null && r.ipv6 !== undefined && sameBytes(r.ipv6.address, this.myIpv6);
      if (!v4 && !v6) continue;
      now.add(r.peerId);
      if (this.claimants.has(r.peerId)) continue;
      const address = v4 ? u32ToIpv4(this.myIpv4) : formatIpAddress(this.myIpv6!);
      this.log.warn(`duplicate virtual address ${address}: peer ${r.peerId} uses it too (this node is peer ${this.myPeerId});`
        + ' each node sends to the nearer of the two (the lower peer id on a tie); give one of them another -i/--ipv6',
      { peer_id: r.peerId, hostname: r.hostname, our_peer_id: this.myPeerId });
    }
    for (const peerId of this.claimants) {
      if (!now.has(peerId)) this.log.info(`peer ${peerId} no longer uses our virtual address`, { peer_id: peerId });
    }
    this.claimants.clear();
    for (const peerId of now) this.claimants.add(peerId);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
