/**
 * The server end of fake TCP: a real TCP listener on the port takes the handshakes (so the port is
 * really ours and NATs see real connections); each accepted socket's TTL goes to 1 behind one rule
 * for the port, and the peers' raw PSH segments are delivered as datagrams from their address:port.
 *
 * Only an address with an accepted kernel connection is delivered (xtaci/tcpraw does the same):
 * segments from anywhere else are counted as orphans and dropped, so a forged source gets nowhere.
 * Handshake state seen before accept() is kept for a few seconds and for a bounded number of sources.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, isIPv4, type Server, type Socket } from 'node:net';
import { TstierError } from '../errors.js';
import { nowMs } from '../io/clock.js';
import { TCP_ACK, TCP_SYN } from '../packet/tcp.js';
import { FakeTcpFirewall, requireFakeTcpCapabilities } from './firewall.js';
import { FakeTcpFlow, newDataSegment } from './flow.js';
import { copyPayload, FAKETCP_MAX_PAYLOAD, newCounters, type FakeTcpCounters, type PacketFrom, type PacketSocket } from './packet-socket.js';
import { RawTcpSocket, setSocketTtl } from './raw-socket.js';
import { formatAddr, parseAddr, SegmentBuilder, type SegmentInfo } from './segment.js';

/** Connections a listener holds; more are refused (closed at accept). */
const MAX_CONNECTIONS = 4096;
/** Sources seen in a handshake but not yet accepted; the oldest is forgotten first. */
const MAX_PENDING = 1024;
/** A handshake not accepted within this is forgotten (tcpraw's orphan expiry). */
const PENDING_TTL_MS = 5000;
/**
 * A connection silent this long is closed (tcpraw's expiry): a peer that died without its FIN
 * reaching us (killed, so its kernel's TTL-1 FIN was dropped; or cut off) must not hold state forever.
 * Both our users send keepalives far more often (smux every 10 s; the peer protocol's heartbeats).
 */
const IDLE_MS = 60_000;

interface Entry {
  flow: FakeTcpFlow;
  socket: Socket | null;
  from: PacketFrom;
  seenAt: number;
}

/** The flow table key of an IPv4 address and port: exact in a double (48 bits). */
function keyOf(addr: number, port: number): number {
  return addr * 65536 + port;
}

export class FakeTcpListener extends EventEmitter implements PacketSocket {
  readonly counters: FakeTcpCounters = newCounters();
  private readonly entries = new Map<number, Entry>();
  private readonly byName = new Map<string, Entry>();
  /** Entries by their `from` object, for callers that keep it (one link per peer). */
  private readonly byFrom = new Map<PacketFrom, Entry>();
  private server: Server | null = null;
  private raw: RawTcpSocket | null = null;
  private rule = -1;
  private sweeper: NodeJS.Timeout | undefined;
  private connections = 0;
  private readonly builder = new SegmentBuilder(FAKETCP_MAX_PAYLOAD);
  private readonly out = newDataSegment();
  private port = 0;
  private closed = false;
  /** The entry of the last send(), so a run of replies to one peer skips the text key. */
  private lastSent: Entry | undefined;

  private constructor(readonly host: string) {
    super();
  }

  /** Listens on host:port (IPv4; 0.0.0.0 for all); `what` names the flag or URI for errors. */
  static async listen(host: string, port: number, what: string): Promise<FakeTcpListener> {
    if (!isIPv4(host)) throw new TstierError('TSTIER_E_BAD_CONFIG', `${what}: fake TCP carries IPv4 only, not ${host}`);
    requireFakeTcpCapabilities(what);
    const fw = FakeTcpFirewall.get();
    await fw.ensure();
    const l = new FakeTcpListener(host);
    try {
      await l.start(fw, port, what);
    } catch (e) {
      l.close();
      throw e;
    }
    return l;
  }

  private async start(fw: FakeTcpFirewall, port: number, what: string): Promise<void> {
    const server = createServer({ noDelay: true }, (s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE'
        ? new TstierError('TSTIER_E_ADDR_IN_USE', `${what}: tcp port ${this.host}:${port} is already used by another listener; fake TCP needs it for its handshakes`)
        : new TstierError('TSTIER_E_BAD_CONFIG', `${what}: cannot listen on tcp ${this.host}:${port}: ${e.message}`)));
      server.listen(port, this.host, () => resolve());
    });
    server.on('error', () => undefined);
    this.port = (server.address() as { port: number }).port;
    const any = this.host === '0.0.0.0';
    this.rule = await fw.dropKernelSegments(`${any ? '' : `ip saddr ${this.host} `}tcp sport ${this.port}`);
    this.raw = new RawTcpSocket(any ? null : this.host, this.port, true, (buf, seg) => this.onSegment(buf, seg),
      (m) => this.fail(m));
    this.sweeper = setInterval(() => this.sweep(), PENDING_TTL_MS);
    this.sweeper.unref();
  }

  private newEntry(localAddr: number, remoteAddr: number, remotePort: number): Entry {
    const flow = new FakeTcpFlow(localAddr, this.port, remoteAddr, remotePort, randomBytes(4).readUInt32LE(0));
    return { flow, socket: null, from: { address: formatAddr(remoteAddr), port: remotePort }, seenAt: nowMs() };
  }

  private onSegment(buf: Uint8Array, seg: SegmentInfo): void {
    const key = keyOf(seg.srcAddr, seg.srcPort);
    let e = this.entries.get(key);
    if ((seg.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN && !e?.socket) {
      // A handshake starting: remember its numbers until accept() hands us the socket.
      if (!e) {
        if (this.entries.size - this.connections >= MAX_PENDING) this.forgetOldestPending();
        e = this.newEntry(seg.dstAddr, seg.srcAddr, seg.srcPort);
        this.entries.set(key, e);
      }
    }
    if (!e) {
      this.counters.orphans++;
      return;
    }
    e.seenAt = nowMs();
    if (!e.flow.onSegment(seg)) return;
    if (!e.socket) {
      this.counters.orphans++;
      return;
    }
    this.counters.delivered++;
    this.emit('message', copyPayload(buf, seg.payloadStart, seg.payloadEnd), e.from);
  }

  private forgetOldestPending(): void {
    for (const [k, e] of this.entries) {
      if (!e.socket) {
        this.entries.delete(k);
        return;
      }
    }
  }

  private sweep(): void {
    const now = nowMs();
    for (const [k, e] of this.entries) {
      if (!e.socket) {
        if (e.seenAt < now - PENDING_TTL_MS) this.entries.delete(k);
      } else if (e.seenAt < now - IDLE_MS) {
        this.hangUp(e.from);
      }
    }
  }

  private accept(socket: Socket): void {
    socket.on('error', () => undefined);
    const remote = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const local = (socket.localAddress ?? '').replace(/^::ffff:/, '');
    if (this.closed || this.connections >= MAX_CONNECTIONS || !isIPv4(remote) || !isIPv4(local) || !setSocketTtl(socket, 1)) {
      socket.destroy();
      return;
    }
    const key = keyOf(parseAddr(remote), socket.remotePort!);
    const prev = this.entries.get(key);
    if (prev?.socket) prev.socket.destroy(); // the same source port again: the old connection is dead
    const e = prev && !prev.socket ? prev : this.newEntry(parseAddr(local), parseAddr(remote), socket.remotePort!);
    e.socket = socket;
    this.entries.set(key, e);
    this.byName.set(`${e.from.address}:${e.from.port}`, e);
    this.byFrom.set(e.from, e);
    this.connections++;
    socket.on('data', () => undefined); // the kernel's copy of the peer's raw segments
    socket.once('close', () => {
      this.connections--;
      if (this.entries.get(key) === e) this.entries.delete(key);
      const name = `${e.from.address}:${e.from.port}`;
      if (this.byName.get(name) === e) this.byName.delete(name);
      this.byFrom.delete(e.from);
      if (this.lastSent === e) this.lastSent = undefined;
      this.emit('peerclose', e.from);
    });
  }

  /** Sends one datagram to a connected peer; to an address with no connection it is dropped, as tcpraw does. */
  send(data: Uint8Array, port: number, host: string): void {
    // Replies go to one peer in runs: look the text key up only when the peer changes.
    let e = this.lastSent;
    if (!e || e.from.port !== port || e.from.address !== host) {
      e = this.byName.get(`${host}:${port}`);
      this.lastSent = e;
    }
    this.sendEntry(e, data);
  }

  /** send() to the peer a 'message' came from, by the `from` object it came with (no lookup by text). */
  sendTo(from: PacketFrom, data: Uint8Array): void {
    this.sendEntry(this.byFrom.get(from), data);
  }

  private sendEntry(e: Entry | undefined, data: Uint8Array): void {
    if (!e || !this.raw) return;
    e.flow.next(data.length, nowMs(), this.out);
    this.raw.send(this.builder.build(this.out, data), this.out.srcAddr, this.out.dstAddr);
  }

  /** Ends the connection of one peer: its kernel socket closes with a normal TTL, so the FIN reaches it. */
  hangUp(from: PacketFrom): void {
    const socket = this.byFrom.get(from)?.socket;
    if (!socket) return;
    setSocketTtl(socket, 64);
    socket.destroySoon();
  }

  address(): { address: string; port: number } {
    return { address: this.host, port: this.port };
  }

  /** The number of peers with a kernel connection. */
  get peerCount(): number {
    return this.connections;
  }

  /** Handshakes seen and not accepted (yet): what a SYN flood could grow, bounded by MAX_PENDING. */
  get pendingCount(): number {
    return this.entries.size - this.connections;
  }

  stats(): FakeTcpCounters {
    return { ...this.counters, malformed: this.raw?.errors.malformed ?? 0, badChecksum: this.raw?.errors.badChecksum ?? 0 };
  }

  /** The raw socket failed (it cannot recover): the listener closes and says why ('close'). */
  private fail(reason: string): void {
    if (this.closed) return;
    this.close();
    this.emit('close', reason);
  }

  close(callback?: () => void): void {
    if (!this.closed) {
      this.closed = true;
      if (this.sweeper) clearInterval(this.sweeper);
      this.raw?.close();
      for (const e of this.entries.values()) {
        if (!e.socket) continue;
        setSocketTtl(e.socket, 64);
        e.socket.destroySoon();
      }
      this.server?.close();
      if (this.rule >= 0) void FakeTcpFirewall.get().remove(this.rule);
    }
    if (callback) queueMicrotask(callback);
  }
}
