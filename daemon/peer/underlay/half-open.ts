/**
 * Admission control for a stream listener's half-open connections (accepted, not yet past the
 * handshake), sans-IO: the adapter reports accepts and settlements with the time, and closes what
 * this returns.
 *
 * - Deadline: a connection is half-open for at most `deadlineMs` counted from its accept, however
 *   it trickles bytes meanwhile (an inactivity timer would let a byte a second hold it forever).
 * - Caps: at most `perSource` half-open per source address and `global` in all. Over a cap the
 *   OLDEST half-open is closed, not the new one: refusing newcomers would let a flood that merely
 *   holds the slots (global / deadline connections a second) lock every new peer out, while
 *   evicting the oldest means a flood must outpace a legitimate handshake (one round trip) to
 *   starve it. Over the per-source cap the victim is that source's oldest, so one address only
 *   ever displaces itself; over the global cap it is the oldest of the source holding the most.
 * - Bursts: evictions are counted in `stats` and reported as two events, one when they begin and
 *   one once `quietMs` passed without any (with the count), so a flood logs two lines, not one per
 *   connection.
 */
import { formatIpAddress, parseIpv6Address } from '../../packet/address.js';

export interface HalfOpenLimits {
  /** Total time a connection may stay half-open, from its accept. */
  deadlineMs: number;
  /** Half-open connections one source (an IPv4 address, an IPv6 /64: see sourceKey) may hold. */
  perSource: number;
  /** Half-open connections the listener holds in all. */
  global: number;
  /** A burst of evictions is over after this long without one. */
  quietMs: number;
}

export const DEFAULT_HALF_OPEN: HalfOpenLimits = { deadlineMs: 5000, perSource: 32, global: 512, quietMs: 10_000 };

/**
 * The defaults, with the global cap at most a quarter of the descriptor limit: a flood of half-open
 * streams then cannot by itself run the process out of descriptors (which would fail every accept,
 * dial and file the node needs), whatever the limit it was started with.
 */
export function halfOpenLimitsFor(openFiles: number | undefined): HalfOpenLimits {
  const global = openFiles === undefined ? DEFAULT_HALF_OPEN.global
    : Math.max(1, Math.min(DEFAULT_HALF_OPEN.global, Math.floor(openFiles / 4)));
  return { ...DEFAULT_HALF_OPEN, global };
}

export interface HalfOpenStats {
  admitted: number;
  /** Left the half-open state in time (handshake done, or closed by either side). */
  settled: number;
  /** Closed at the deadline. */
  expired: number;
  /** Closed to make room under the per-source cap. */
  evictedPerSource: number;
  /** Closed to make room under the global cap. */
  evictedGlobal: number;
  /** Closed because the process ran out of descriptors (shed). */
  shed: number;
  /** Most half-open connections held at once. */
  peak: number;
}

/** Why a half-open connection was closed early: which cap it was over, or out of descriptors. */
export type Cap = 'per-source' | 'global' | 'descriptors';

export type HalfOpenEvent =
  | { type: 'overload'; cap: Cap; source: string }
  | { type: 'overload-over'; evicted: number; durationMs: number };

/**
 * The source a connection is counted against: its IPv4 address, or for IPv6 its /64, since one
 * host commonly holds a whole /64 and could otherwise spread a flood over as many addresses as it
 * likes. IPv4-mapped IPv6 addresses count as their IPv4 address.
 */
export function sourceKey(address: string): string {
  if (!address.includes(':')) return address;
  const bytes = parseIpv6Address(address);
  if (!bytes) return address;
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return bytes.subarray(12).join('.');
  bytes.fill(0, 8);
  return `${formatIpAddress(bytes)}/64`;
}

interface Entry {
  source: string;
  acceptedAt: number;
}

export class HalfOpenGate<T> {
  readonly stats: HalfOpenStats = { admitted: 0, settled: 0, expired: 0, evictedPerSource: 0, evictedGlobal: 0, shed: 0,
    peak: 0 };
  /** Every half-open connection in accept order, so the first has the earliest deadline. */
  private readonly entries = new Map<T, Entry>();
  /** Per source address, its half-open connections in accept order. */
  private readonly bySource = new Map<string, Set<T>>();
  private readonly events: HalfOpenEvent[] = [];
  private burst: { startedAt: number; lastAt: number; evicted: number } | undefined;

  constructor(readonly limits: HalfOpenLimits = DEFAULT_HALF_OPEN) {}

  get size(): number {
    return this.entries.size;
  }

  /** A connection was accepted from `source`. Returns the connections to close now to stay within the caps. */
  admit(conn: T, source: string, now: number): T[] {
    const evicted: T[] = [];
    const own = this.bySource.get(source);
    if (own && own.size >= this.limits.perSource) {
      evicted.push(this.evict(first(own), 'per-source', now));
    } else if (this.entries.size >= this.limits.global) {
      evicted.push(this.evict(this.heaviestOldest(), 'global', now));
    }
    this.entries.set(conn, { source, acceptedAt: now });
    let set = this.bySource.get(source);
    if (!set) this.bySource.set(source, (set = new Set()));
    set.add(conn);
    this.stats.admitted++;
    this.stats.peak = Math.max(this.stats.peak, this.entries.size);
    return evicted;
  }

  /** `conn` is no longer half-open (authenticated, or closed); unknown connections are ignored. */
  settle(conn: T): void {
    if (this.remove(conn)) this.stats.settled++;
  }

  /** True while `conn` is half-open here. */
  holds(conn: T): boolean {
    return this.entries.has(conn);
  }

  /** When handleTimeout has work: the earliest deadline, or the end of an eviction burst. */
  pollTimeout(): number {
    const head = this.entries.values().next();
    const deadline = head.done ? Infinity : head.value.acceptedAt + this.limits.deadlineMs;
    return Math.min(deadline, this.burst ? this.burst.lastAt + this.limits.quietMs : Infinity);
  }

  /** Returns the connections whose deadline passed (now removed); ends a burst that went quiet. */
  handleTimeout(now: number): T[] {
    const expired: T[] = [];
    for (const [conn, e] of this.entries) {
      if (e.acceptedAt + this.limits.deadlineMs > now) break;
      this.remove(conn);
      this.stats.expired++;
      expired.push(conn);
    }
    const b = this.burst;
    if (b && now >= b.lastAt + this.limits.quietMs) {
      this.events.push({ type: 'overload-over', evicted: b.evicted, durationMs: b.lastAt - b.startedAt });
      this.burst = undefined;
    }
    return expired;
  }

  pollEvent(): HalfOpenEvent | undefined {
    return this.events.shift();
  }

  /**
   * Out of descriptors: sheds a quarter of the half-open connections (at least one), each the oldest
   * of the heaviest source, so that a few accepts can succeed before the next failure, not just one.
   */
  shed(now: number): T[] {
    const shed: T[] = [];
    const n = Math.ceil(this.entries.size / 4);
    for (let i = 0; i < n; i++) shed.push(this.evict(this.heaviestOldest(), 'descriptors', now));
    return shed;
  }

  private evict(conn: T, cap: Cap, now: number): T {
    const source = this.entries.get(conn)!.source;
    this.remove(conn);
    if (cap === 'per-source') this.stats.evictedPerSource++;
    else if (cap === 'global') this.stats.evictedGlobal++;
    else this.stats.shed++;
    if (!this.burst) {
      this.burst = { startedAt: now, lastAt: now, evicted: 0 };
      this.events.push({ type: 'overload', cap, source });
    }
    this.burst.lastAt = now;
    this.burst.evicted++;
    return conn;
  }

  /** The oldest connection of the source holding the most; ties go to the older connection. */
  private heaviestOldest(): T {
    let best: Set<T> | undefined;
    let bestAt = Infinity;
    for (const set of this.bySource.values()) {
      const head = first(set);
      const at = this.entries.get(head)!.acceptedAt;
      if (!best || set.size > best.size || (set.size === best.size && at < bestAt)) {
        best = set;
        bestAt = at;
      }
    }
    return first(best!);
  }

  private remove(conn: T): boolean {
    const e = this.entries.get(conn);
    if (!e) return false;
    this.entries.delete(conn);
    const set = this.bySource.get(e.source)!;
    set.delete(conn);
    if (set.size === 0) this.bySource.delete(e.source);
    return true;
  }
}

function first<T>(set: Set<T>): T {
  return set.values().next().value as T;
}
