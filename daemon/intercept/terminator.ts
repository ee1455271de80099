/**
 * Where the source node terminates the application's TCP connection: the seam between the proxy
 * (which decides per SYN, dials remotely, and pipes bytes) and the three ways of ending a TCP flow
 * locally — the kernel (NAT + re-injection into our listeners), the userspace stack (smoltcp), or a
 * packet-filter REDIRECT to our listener that keeps the flow out of the TUN (redirect/).
 *
 * One flow's life, as the proxy sees it:
 *   claim(src, dst, follow)   a SYN of a flow nobody tracks: return an owner to hold it, or null (it
 *                     passes as plain packets; give `follow` a row to have them counted and its end told)
 *   held(owner)       the SYN is held, unanswered; start the remote dial now
 *   release/refuse/drop   the dial's outcome: complete the handshake / RST the app / stay silent
 *   carryPlain(owner, row)   no carrier would take it: the terminator lets the held flow go on as
 *                     plain packets (its SYN forwarded; later packets then pass too), `row` following it
 *   accepted(owner, stream)   the application's connection is up: pipe its bytes
 *   ended(owner)      the proxy is done with the stream (late packets are still absorbed a while)
 *   abandoned(owner)  the flow died before or without the proxy's say (client reset, stack crash,
 *                     held too long): the proxy resets its carrier side
 *
 * The redirect terminator accepts first: its kernel has completed the application's handshake before
 * the proxy hears of the flow, so "held" means the accepted connection is not read yet, refuse and drop
 * both reset it, and plain packets are the daemon's own dial of the destination, spliced to it.
 */
import type { Socket } from 'node:net';
import type { AppStream } from '../carrier/socket-pipe.js';
import type { SocketAddr } from '../packet/flow-key.js';
import type { FlowCounters } from '../proxy/flow-table.js';

/** The proxy's per-flow object; the terminator keeps its own state for the flow in `term`. */
export interface TerminatedFlow {
  term: unknown;
}

/** The proxy's row of a flow it left to plain packets, as the terminator follows the flow. */
export interface PlainRow {
  /** The flow's bytes: the terminator counts what it sees of them. */
  readonly counters: FlowCounters;
  /** The flow ended (its FIN or RST passed, or the terminator's pipe closed); `why` goes in the row's reason. */
  ended(why?: string): void;
}

export interface TerminatorClient<O extends TerminatedFlow> {
  /**
   * `src`/`dst` are copies (binary addresses). Returning null, the client may call `follow` (during
   * the call) with the row that lists the flow.
   */
  claim(src: SocketAddr, dst: SocketAddr, follow: (row: PlainRow) => void): O | null;
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
   * No carrier takes a held flow: it goes on as plain packets (its SYN forwarded as read; redirect: the
   * daemon's own dial), `row` following it. Returns the SYN's family, or null if the flow was not held.
   */
  carryPlain(owner: O, row: PlainRow): 'ipv4' | 'ipv6' | null;
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
