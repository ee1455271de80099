/**
 * Feeds SmoltcpStack malformed, truncated and mutated IP packets from a seeded generator, while
 * an application accepts, rejects, reads, writes and aborts the flows that appear. Shared by the
 * unit test (50,000 packets) and bench/smoltcp-fuzz.ts (millions).
 */
import { TstierError } from '../../../daemon/errors.js';
import type { SmoltcpStack } from '../../../daemon/intercept/smoltcp/stack.js';
import { Ipv4View } from '../../../daemon/packet/ipv4.js';
import { Ipv6View } from '../../../daemon/packet/ipv6.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TcpView } from '../../../daemon/packet/tcp.js';
import { Rng } from '../../sim/world.js';
import { TestClient, parseSegment } from './harness.js';

export interface FuzzResult {
  packets: number;
  /** Traps the binding recovered from (must be 0). */
  crashes: number;
  /** Exceptions other than TSTIER_E_CLOSED that escaped the binding (must be 0). */
  thrown: number;
  /** Calls on a flow that had just ended (TSTIER_E_CLOSED). */
  closedRaces: number;
  newFlows: number;
  /** How many events of each type the application saw: how deep the fuzz reached. */
  events: Record<string, number>;
  memoryAfterWarmup: number;
  memoryAtEnd: number;
}

/** Flows the fuzzing application keeps open at most; older ones are aborted. */
const MAX_APP_FLOWS = 32;
const FLOW_LIFETIME_PACKETS = 3_000;
const WARMUP_PACKETS = 10_000;

export function runFuzz(stack: SmoltcpStack, packets: number, seed: number): FuzzResult {
  const rng = new Rng(seed);
  const int = (n: number): number => rng.int(n);
  // A small tuple space, so mutated packets keep hitting live flows.
  const clients = [
    ...Array.from({ length: 6 }, (_, i) => new TestClient(`10.0.0.${2 + i}`, 50000 + i, `198.51.100.${1 + (i % 3)}`, 80 + i)),
    ...Array.from({ length: 4 }, (_, i) => new TestClient(`fd00::${2 + i}`, 51000 + i, `2001:db8::${1 + i}`, 443)),
  ];
  const flowsBorn = new Map<number, number>();
  const payload = new Uint8Array(1400);
  let now = 0;
  let thrown = 0;
  let closedRaces = 0;
  let newFlows = 0;
  const events: Record<string, number> = {};
  let memoryAfterWarmup = 0;

  const seedPacket = (): Uint8Array => {
    const c = clients[int(clients.length)]!;
    // Mostly the numbers the stack last used towards this client, so segments reach deep states.
    if (int(4) === 0) c.rcvNxt = int(0x1_0000_0000);
    const flags = [TCP_SYN, TCP_ACK, TCP_ACK | TCP_PSH, TCP_ACK | TCP_FIN, TCP_RST, int(256)][int(6)]!;
    const len = flags & TCP_PSH ? int(1200) : 0;
    for (let i = 0; i < len; i++) payload[i] = int(256);
    const seq = flags === TCP_SYN ? c.isn : int(4) ? c.sndNxt : int(0x1_0000_0000);
    const p = c.packet(flags, payload.subarray(0, len), seq);
    if (flags & TCP_PSH) c.sndNxt = (c.sndNxt + len) >>> 0;
    return p;
  };

  const generate = (): Uint8Array => {
    switch (int(6)) {
      case 0: {
        // Random bytes behind a plausible version nibble.
        const p = new Uint8Array(int(1500));
        for (let i = 0; i < p.length; i++) p[i] = int(256);
        if (p.length > 0) p[0] = (int(2) ? 0x45 : 0x60) | (p[0]! & 0x0f);
        return p;
      }
      case 1:
        return seedPacket().subarray(0, int(80));
      case 2:
      case 3: {
        // A few bytes flipped, checksums repaired so the damage reaches TCP and smoltcp.
        const p = seedPacket();
        for (let n = 1 + int(4); n > 0; n--) p[int(p.length)] = int(256);
        repairChecksums(p);
        return p;
      }
      case 4: {
        const p = seedPacket();
        p[int(p.length)] ^= 1 << int(8);
        return p;
      }
      default:
        return seedPacket();
    }
  };

  /** Follows the stack's sequence numbers; parseSegment also proves every output well-formed. */
  const track = (seg: ReturnType<typeof parseSegment>): void => {
    const c = clients.find((x) => x.srcPort === seg.dstPort);
    if (!c) return;
    if (seg.flags & TCP_SYN) c.sndNxt = seg.ack;
    c.rcvNxt = (seg.seq + seg.payload.length + (seg.flags & (TCP_SYN | TCP_FIN) ? 1 : 0)) >>> 0;
  };

  const app = (): void => {
    for (let e; (e = stack.pollEvent()); ) {
      events[e.type] = (events[e.type] ?? 0) + 1;
      if (e.type === 'new') {
        newFlows++;
        if (flowsBorn.size < MAX_APP_FLOWS && int(2)) {
          stack.accept(e.id);
          flowsBorn.set(e.id, now);
        } else stack.reject(e.id);
      } else if (e.type === 'readable') {
        while (stack.recv(e.id));
      } else if (e.type === 'writable') {
        stack.send(e.id, payload.subarray(0, int(3000)));
      } else if (e.type === 'fin') {
        stack.shutdownWrite(e.id);
      } else {
        flowsBorn.delete(e.id);
      }
    }
    for (const [id, born] of flowsBorn) {
      if (now - born > FLOW_LIFETIME_PACKETS) {
        flowsBorn.delete(id);
        stack.abort(id);
      }
    }
  };

  for (let i = 0; i < packets; i++) {
    now++;
    try {
      stack.input(generate(), now);
      if (stack.pollTimeout() <= now) stack.poll(now);
      app();
      for (let p; (p = stack.pollTransmit()); ) track(parseSegment(p));
    } catch (e) {
      // A flow that ended between its event and our call is a normal race, reported as CLOSED.
      if (e instanceof TstierError && e.code === 'TSTIER_E_CLOSED') closedRaces++;
      else thrown++;
    }
    if (i === WARMUP_PACKETS) memoryAfterWarmup = stack.memoryBytes();
  }
  return {
    packets,
    crashes: stack.stats().crashes,
    thrown,
    closedRaces,
    newFlows,
    events,
    memoryAfterWarmup,
    memoryAtEnd: stack.memoryBytes(),
  };
}

const ip4 = new Ipv4View();
const ip6 = new Ipv6View();
const tcp = new TcpView();

/** Recomputes IPv4 header and TCP checksums when the damaged packet still parses. */
function repairChecksums(p: Uint8Array): void {
  if (p[0]! >> 4 === 4) {
    if (ip4.wrap(p)) return;
    ip4.fillChecksum();
    if (ip4.transportProtocol === 6 && ip4.hasTransportHeader && !tcp.wrap(p, ip4.transportStart, ip4.end)) tcp.fillChecksum(0);
  } else if (!ip6.wrap(p) && ip6.transportProtocol === 6 && ip6.hasTransportHeader) {
    if (!tcp.wrap(p, ip6.transportStart, ip6.end)) tcp.fillChecksum(0);
  }
}
