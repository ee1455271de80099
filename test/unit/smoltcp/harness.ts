/**
 * A minimal TCP client that talks to SmoltcpStack by IP packets, and a loop that moves packets
 * between them on a virtual clock. No loss, so the client never retransmits; it honours the
 * stack's advertised window and acknowledges every segment it accepts.
 */
import { parseIpAddress } from '../../../daemon/packet/address.js';
import { buildTcpPacket } from '../../../daemon/packet/build.js';
import { Ipv4View } from '../../../daemon/packet/ipv4.js';
import { Ipv6View } from '../../../daemon/packet/ipv6.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TcpView } from '../../../daemon/packet/tcp.js';
import type { SmoltcpEvent, SmoltcpStack } from '../../../daemon/intercept/smoltcp/stack.js';

const SEGMENT = 1000;
const CLIENT_WINDOW = 65535;

export interface Segment {
  flags: number;
  seq: number;
  ack: number;
  window: number;
  payload: Uint8Array;
  mss?: number | undefined;
}

/** Parses an IP+TCP packet emitted by the stack (test side, so errors throw). */
export function parseSegment(packet: Uint8Array): { src: Uint8Array; dst: Uint8Array; srcPort: number; dstPort: number } & Segment {
  let src: Uint8Array;
  let dst: Uint8Array;
  let start: number;
  let end: number;
  if (packet[0]! >> 4 === 4) {
    const ip = new Ipv4View();
    if (ip.wrap(packet)) throw new Error('stack emitted a bad IPv4 packet');
    if (!ip.verifyChecksum()) throw new Error('stack emitted a bad IPv4 checksum');
    src = packet.slice(12, 16);
    dst = packet.slice(16, 20);
    start = ip.transportStart;
    end = ip.end;
  } else {
    const ip = new Ipv6View();
    if (ip.wrap(packet)) throw new Error('stack emitted a bad IPv6 packet');
    src = ip.src().slice();
    dst = ip.dst().slice();
    start = ip.transportStart;
    end = ip.end;
  }
  const tcp = new TcpView();
  if (tcp.wrap(packet, start, end)) throw new Error('stack emitted a bad TCP header');
  if (!tcp.verifyChecksum(0)) throw new Error('stack emitted a bad TCP checksum');
  const options = {} as { mss?: number };
  tcp.parseOptions(options);
  return {
    src,
    dst,
    srcPort: tcp.srcPort,
    dstPort: tcp.dstPort,
    flags: tcp.flags,
    seq: tcp.seq,
    ack: tcp.ack,
    window: tcp.window,
    payload: packet.slice(tcp.payloadStart, end),
    mss: options.mss,
  };
}

export class TestClient {
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly isn: number;
  sndNxt: number;
  sndUna: number;
  rcvNxt = 0;
  peerWindow = 0;
  established = false;
  finReceived = false;
  finSent = false;
  reset = false;
  synAck: Segment | null = null;
  readonly received: Uint8Array[] = [];
  private outbox: Uint8Array[] = [];
  private toSend = new Uint8Array(0);
  private wantFin = false;

  constructor(
    src: string,
    readonly srcPort: number,
    dst: string,
    readonly dstPort: number,
    isn = 0x1000_0000 + srcPort,
  ) {
    this.src = parseIpAddress(src)!;
    this.dst = parseIpAddress(dst)!;
    this.isn = isn >>> 0;
    this.sndNxt = this.isn;
    this.sndUna = this.isn;
  }

  get key(): string {
    return `${this.src.join('.')}|${this.srcPort}`;
  }

  packet(flags: number, payload: Uint8Array = new Uint8Array(0), seq = this.sndNxt, options: { mss?: number } = {}): Uint8Array {
    return buildTcpPacket(
      { src: this.src, dst: this.dst },
      { srcPort: this.srcPort, dstPort: this.dstPort, seq, ack: flags & TCP_ACK ? this.rcvNxt : 0, flags, window: CLIENT_WINDOW, urgent: 0, options, payload },
    );
  }

  syn(): Uint8Array {
    return this.packet(TCP_SYN, undefined, this.isn, { mss: 1200 });
  }

  write(data: Uint8Array): void {
    const joined = new Uint8Array(this.toSend.length + data.length);
    joined.set(this.toSend);
    joined.set(data, this.toSend.length);
    this.toSend = joined;
  }

  /** FIN after everything written so far. */
  close(): void {
    this.wantFin = true;
  }

  receivedBytes(): Uint8Array {
    return Buffer.concat(this.received);
  }

  /** Handles one packet from the stack; replies go to the outbox. */
  receive(seg: Segment): void {
    if (seg.flags & TCP_RST) {
      this.reset = true;
      return;
    }
    if (seg.flags & TCP_SYN) {
      if (!(seg.flags & TCP_ACK) || seg.ack !== ((this.isn + 1) >>> 0)) throw new Error('unexpected SYN from stack');
      this.synAck = seg;
      this.rcvNxt = (seg.seq + 1) >>> 0;
      this.sndNxt = this.sndUna = (this.isn + 1) >>> 0;
      this.peerWindow = seg.window;
      this.established = true;
      this.outbox.push(this.packet(TCP_ACK));
      return;
    }
    if (seg.flags & TCP_ACK) {
      if (((seg.ack - this.sndUna) | 0) > 0) this.sndUna = seg.ack;
      this.peerWindow = seg.window;
    }
    let advanced = false;
    if (seg.payload.length > 0 && seg.seq === this.rcvNxt) {
      this.received.push(seg.payload);
      this.rcvNxt = (this.rcvNxt + seg.payload.length) >>> 0;
      advanced = true;
    }
    if (seg.flags & TCP_FIN && ((seg.seq + seg.payload.length) >>> 0) === this.rcvNxt) {
      this.finReceived = true;
      this.rcvNxt = (this.rcvNxt + 1) >>> 0;
      advanced = true;
    }
    if (advanced || seg.payload.length > 0) this.outbox.push(this.packet(TCP_ACK));
  }

  /** Packets to send now: replies, then data the window allows, then a FIN when all is sent. */
  drain(): Uint8Array[] {
    if (this.established) {
      for (;;) {
        const inFlight = (this.sndNxt - this.sndUna) >>> 0;
        const offset = (this.sndNxt - this.isn - 1) >>> 0;
        const left = this.toSend.length - offset;
        const room = this.peerWindow - inFlight;
        const len = Math.min(SEGMENT, left, room);
        if (len <= 0) break;
        this.outbox.push(this.packet(TCP_ACK | TCP_PSH, this.toSend.slice(offset, offset + len)));
        this.sndNxt = (this.sndNxt + len) >>> 0;
      }
      const allSent = (this.sndNxt - this.isn - 1) >>> 0 === this.toSend.length;
      if (this.wantFin && !this.finSent && allSent) {
        this.outbox.push(this.packet(TCP_ACK | TCP_FIN));
        this.sndNxt = (this.sndNxt + 1) >>> 0;
        this.finSent = true;
      }
    }
    const out = this.outbox;
    this.outbox = [];
    return out;
  }
}

/** The application side of the stack in tests: collects data per flow, sends what it is given. */
export class TestApp {
  readonly events: SmoltcpEvent[] = [];
  readonly received = new Map<number, Uint8Array[]>();
  private readonly pending = new Map<number, Uint8Array>();
  /** Decides what to do with a new flow; default accept. */
  onNew: (event: Extract<SmoltcpEvent, { type: 'new' }>) => void;

  constructor(private readonly stack: SmoltcpStack) {
    this.onNew = (e) => stack.accept(e.id);
  }

  send(id: number, data: Uint8Array): void {
    const before = this.pending.get(id) ?? new Uint8Array(0);
    this.pending.set(id, Buffer.concat([before, data]));
    this.flush(id);
  }

  /** Bytes `send` was given that the stack has not taken yet. */
  unsent(id: number): number {
    return this.pending.get(id)?.length ?? 0;
  }

  receivedBytes(id: number): Uint8Array {
    return Buffer.concat(this.received.get(id) ?? []);
  }

  ofType<T extends SmoltcpEvent['type']>(type: T): Extract<SmoltcpEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<SmoltcpEvent, { type: T }> => e.type === type);
  }

  handle(event: SmoltcpEvent): void {
    this.events.push(event);
    if (event.type === 'new') this.onNew(event);
    else if (event.type === 'readable') {
      for (let chunk; (chunk = this.stack.recv(event.id)); ) {
        const list = this.received.get(event.id) ?? [];
        list.push(chunk);
        this.received.set(event.id, list);
      }
    } else if (event.type === 'writable') this.flush(event.id);
  }

  private flush(id: number): void {
    const data = this.pending.get(id);
    if (!data || data.length === 0) return;
    const n = this.stack.send(id, data);
    this.pending.set(id, data.subarray(n));
  }
}

/** Moves packets between one stack and its clients on a virtual clock. */
export class Harness {
  now = 1_000;
  readonly clients = new Map<string, TestClient>();
  readonly app: TestApp;
  /** Every packet the stack emitted, parsed. */
  readonly emitted: ReturnType<typeof parseSegment>[] = [];

  constructor(readonly stack: SmoltcpStack) {
    this.app = new TestApp(stack);
  }

  add(client: TestClient): TestClient {
    this.clients.set(client.key, client);
    return client;
  }

  /** Connects `client` (the app accepts by default) and returns the flow id once established. */
  open(client: TestClient): number {
    this.add(client);
    this.stack.input(client.syn(), this.now);
    const isOurs = (e: SmoltcpEvent): boolean => e.type === 'new' && e.src.port === client.srcPort;
    this.runUntil(() => this.app.events.some(isOurs));
    const id = this.app.events.find(isOurs)!.id;
    this.runUntil(() => this.app.events.some((e) => e.type === 'writable' && e.id === id));
    return id;
  }

  /** One round at the current time; returns whether anything moved. */
  exchange(): boolean {
    let moved = false;
    this.stack.poll(this.now);
    for (let e; (e = this.stack.pollEvent()); ) {
      this.app.handle(e);
      moved = true;
    }
    this.stack.poll(this.now);
    for (let p; (p = this.stack.pollTransmit()); ) {
      const seg = parseSegment(p.slice());
      this.emitted.push(seg);
      this.clients.get(`${seg.dst.join('.')}|${seg.dstPort}`)?.receive(seg);
      moved = true;
    }
    for (const client of this.clients.values()) {
      for (const packet of client.drain()) {
        this.stack.input(packet, this.now);
        moved = true;
      }
    }
    return moved;
  }

  /** Exchanges, or else jumps the clock to the stack's next timer if it is before `limit`. */
  private step(limit: number): boolean {
    if (this.exchange()) return true;
    const at = this.stack.pollTimeout();
    if (at > limit) return false;
    this.now = Math.max(this.now + 1, at);
    return true;
  }

  /** Steps until `done()`; fails after `maxSteps` rounds or when nothing is left to happen. */
  runUntil(done: () => boolean, maxSteps = 20_000): void {
    for (let i = 0; i < maxSteps && !done(); i++) {
      if (!this.step(Infinity)) break;
    }
    if (!done()) throw new Error('condition not reached');
  }

  /** Steps until nothing moves and no timer falls within the next `horizonMs`. */
  settle(horizonMs = 1_000, maxSteps = 20_000): void {
    const limit = this.now + horizonMs;
    for (let i = 0; i < maxSteps; i++) {
      if (!this.step(limit)) return;
    }
    throw new Error('stack did not settle');
  }
}

/** Promises that resolve once their condition holds; call check() after anything that may change one. */
export class Conditions {
  private readonly waiters: { done: () => boolean; resolve: () => void }[] = [];

  readonly check = (): void => {
    for (const w of [...this.waiters]) {
      if (w.done()) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };

  until(done: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ done, resolve });
      this.check();
    });
  }
}
