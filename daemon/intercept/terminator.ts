/**
 * Where the source node terminates the application's TCP connection: the seam between the proxy
 * (which decides per SYN, dials remotely, and pipes bytes) and the three ways of ending a TCP flow
 * locally — the kernel (NAT + re-injection into our listeners), the userspace stack (smoltcp), or a
 * packet-filter REDIRECT to our listener that keeps the flow out of the TUN (redirect/).
 *
 * One flow's life, as the proxy sees it:
 *   claim(src, dst)   a SYN of a flow nobody tracks: return an owner to hold it, or null (it passes)
 *   held(owner)       the SYN is held, unanswered; start the remote dial now
 *   release/refuse/drop   the dial's outcome: complete the handshake / RST the app / stay silent
 *   pass(owner)       no carrier would take it: forget the held flow and hand back the app's SYN,
 *                     which the proxy forwards as a plain packet (later packets then pass too)
 *   accepted(owner, stream)   the application's connection is up: pipe its bytes
 *   ended(owner)      the proxy is done with the stream (late packets are still absorbed a while)
 *   abandoned(owner)  the flow died before or without the proxy's say (client reset, stack crash,
 *                     held too long): the proxy resets its carrier side
 *
 * The redirect terminator accepts first: its kernel has completed the application's handshake before
 * the proxy hears of the flow, so it hands claim() a PlainSplice instead of a SYN, "held" means the
 * accepted connection is not read yet, refuse and drop both reset it, and pass gives back the splice.
 */
import type { Socket } from 'node:net';
import type { AppStream } from '../carrier/socket-pipe.js';
import type { SocketAddr } from '../packet/flow-key.js';
import type { FlowCounters } from '../proxy/flow-table.js';

/** The proxy's per-flow object; the terminator keeps its own state for the flow in `term`. */
export interface TerminatedFlow {
  term: unknown;
}

/**
 * A connection an accepted-first terminator (redirect) holds in place of a SYN. When the proxy does not
 * carry it (claim returns null, or pass), the terminator pipes it to its destination itself, as plain
 * packets through the TUN. `follow` gives it the flow's row counters, and what to call when that pipe ends.
 */
export interface PlainSplice {
  follow(counters: FlowCounters, end: (why: string) => void): void;
}

export interface TerminatorClient<O extends TerminatedFlow> {
  /**
   * `src`/`dst` are copies (binary addresses); `syn` is the packet as read, valid during the call, or
   * the accepted connection's splice (redirect).
   */
  claim(src: SocketAddr, dst: SocketAddr, syn: Uint8Array | PlainSplice): O | null;
  held(owner: O): void;
  accepted(owner: O, stream: AppStream): void;
  abandoned(owner: O, why: string): void;
}

export interface Terminator<O extends TerminatedFlow> {
  /** 'kernel', 'smoltcp' or 'redirect', for logs. */
  readonly kind: string;
  /** An IP packet on its way (read from the TUN; for the subnet proxy, from a peer): true when taken. */
  intercept(packet: Buffer): boolean;
  /**
   * A TCP super-packet read from an offloading TUN (docs/tun.md, "Offloads"): true when taken whole
   * (written back with writeToTun(p, true)); false, and it is cut into packets for intercept().
   * Absent: every super-packet is cut.
   */
  interceptWhole?(packet: Buffer): boolean;
  release(owner: O): void;
  refuse(owner: O): void;
  drop(owner: O): void;
  /**
   * Forgets a held flow unanswered; returns the app's SYN as read (or, redirect, the splice now carrying
   * the connection), or null if it was not held.
   */
  pass(owner: O): Uint8Array | PlainSplice | null;
  ended(owner: O): void;
  /**
   * An unconnected IPv4 socket for the daemon's own dial of a flow it sends as plain packets through
   * the TUN past this terminator (redirect: one exempt from its rule). Absent: any socket passes.
   */
  plainSocket?(): Socket;
  /** Expires held SYNs and lingering closed flows (call about once a second). */
  sweep(now: number): void;
  close(): void;
}

/** A held SYN whose dial never finished is forgotten after this long. */
export const HELD_TIMEOUT_MS = 30_000;
/**
 * How long a closed flow keeps taking its late packets. The application's socket may still be
 * retransmitting its last bytes and FIN after the proxy closed it, with TCP's backoff: under load
 * (1,000 flows through one TUN) 10 s lost them for a few flows, whose clients then waited in
 * FIN-WAIT-2 forever. 60 s is Linux's own FIN timeout.
 */
export const CLOSED_LINGER_MS = 60_000;
