/**
 * ICMP "destination host unreachable" for a packet the node cannot route, so a local `ping` or
 * `connect` fails at once instead of timing out. Never answers an ICMP error (no error storms), a
 * fragment (packet/flow-key.ts's rule: the first one too, as its datagram is incomplete), or
 * multicast/broadcast; the caller rate-limits.
 */
import { internetChecksum } from '../packet/checksum.js';
import { IPPROTO_ICMP } from '../packet/icmp.js';
import { isIpFragment } from '../packet/flow-key.js';
import { emitIpv4Header, IPV4_HEADER_LEN, Ipv4View } from '../packet/ipv4.js';

const ICMP_DEST_UNREACHABLE = 3;
const CODE_HOST_UNREACHABLE = 1;
/** ICMP types that are errors themselves (RFC 1122 3.2.2: never answer them). */
const ICMP_ERROR_TYPES = new Set([3, 4, 5, 11, 12]);
const view = new Ipv4View();

/** The ICMP error to write back to the TUN for `packet`, or null when none must be sent. */
export function hostUnreachableFor(packet: Uint8Array): Uint8Array | null {
  const ip = view;
  if (ip.wrap(packet) !== null || isIpFragment(ip)) return null;
  const dst = ip.dst;
  if (dst >>> 28 >= 0xe || (dst & 0xff) === 255) return null;
  const ihl = ip.headerLength;
  if (ip.protocol === IPPROTO_ICMP && (packet.length <= ihl || ICMP_ERROR_TYPES.has(packet[ihl]!))) return null;
  const quoted = packet.subarray(0, Math.min(packet.length, ihl + 8));
  const icmpLen = 8 + quoted.length;
  const out = new Uint8Array(IPV4_HEADER_LEN + icmpLen);
  // From the unreachable address itself: a reply from one of our own addresses would be a
  // "martian" to the kernel and dropped.
  emitIpv4Header({ src: packet.subarray(ip.dstOffset, ip.dstOffset + 4), dst: packet.subarray(ip.srcOffset, ip.srcOffset + 4), protocol: IPPROTO_ICMP,
    payloadLength: icmpLen, ttl: 64, ident: 0, dontFragment: false, dscpEcn: 0 }, out, 0);
  out[IPV4_HEADER_LEN] = ICMP_DEST_UNREACHABLE;
  out[IPV4_HEADER_LEN + 1] = CODE_HOST_UNREACHABLE;
  out.set(quoted, IPV4_HEADER_LEN + 8);
  const sum = internetChecksum(out, IPV4_HEADER_LEN, out.length);
  out[IPV4_HEADER_LEN + 2] = sum >> 8;
  out[IPV4_HEADER_LEN + 3] = sum & 0xff;
  return out;
}
