/**
 * The client end of one fake TCP connection: the kernel makes the real handshake through a normal
 * socket (so NATs and firewalls see a real connection), then that socket's TTL goes to 1 behind a
 * rule that drops its segments, and the datagrams travel as raw PSH|ACK segments on the same ports.
 * The kernel socket stays open for the connection's life: it holds the port, and its end (a peer's
 * FIN, a middlebox's RST) ends the fake connection ('close'), so the owner can dial again.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect, isIPv4, type Socket } from 'node:net';
import { TstierError } from '../errors.js';
import { nowMs } from '../io/clock.js';
import { TCP_ACK, TCP_SYN } from '../packet/tcp.js';
import { FakeTcpFirewall, requireFakeTcpCapabilities } from './firewall.js';
import { FakeTcpFlow, newDataSegment } from './flow.js';
import { copyPayload, FAKETCP_MAX_PAYLOAD, newCounters, type FakeTcpCounters, type PacketFrom, type PacketSocket } from './packet-socket.js';
import { RawTcpSocket, setSocketTtl } from './raw-socket.js';
import { formatAddr, parseAddr, SegmentBuilder, type SegmentInfo } from './segment.js';

/** SYN-ACKs remembered until our own connect() reports its local port (parallel dials share a raw filter). */
const MAX_SYNACKS = 16;
const DIAL_TIMEOUT_MS = 10_000;

interface SynAck {
  seq: number;
  ack: number;
  tsVal: number;
}

export class FakeTcpConn extends EventEmitter implements PacketSocket {
  readonly counters: FakeTcpCounters = newCounters();
  private flow: FakeTcpFlow | null = null;
  private readonly synAcks = new Map<number, SynAck>();
  private readonly raw: RawTcpSocket;
  private kernel: Socket | null = null;
  private rule = -1;
  private closed = false;
  private readonly builder = new SegmentBuilder(FAKETCP_MAX_PAYLOAD);
  private readonly out = newDataSegment();
  private readonly from: PacketFrom;
  private readonly remoteAddr: number;

  private constructor(readonly host: string, readonly port: number) {
    super();
    this.remoteAddr = parseAddr(host);
    this.from = { address: host, port };
    this.raw = new RawTcpSocket(null, port, false, (buf, seg) => this.onSegment(buf, seg), (m) => this.end(m, 'failed'));
  }

  /** Dials host:port (IPv4); `what` names the flag or URI for errors. */
  static async dial(host: string, port: number, what: string): Promise<FakeTcpConn> {
    if (!isIPv4(host)) throw new TstierError('TSTIER_E_BAD_CONFIG', `${what}: fake TCP carries IPv4 only, not ${host}`);
    requireFakeTcpCapabilities(what);
    const fw = FakeTcpFirewall.get();
    await fw.ensure();
    const conn = new FakeTcpConn(host, port);
    try {
      await conn.handshake(fw);
    } catch (e) {
      conn.close();
      throw e;
    }
    return conn;
  }

  private async handshake(fw: FakeTcpFirewall): Promise<void> {
    const sock = connect({ host: this.host, port: this.port, noDelay: true });
    this.kernel = sock;
    // From the first moment: an RST while the rule is being added must not be an unhandled 'error'.
    sock.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => sock.destroy(new Error('handshake timed out')), DIAL_TIMEOUT_MS);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(new TstierError('TSTIER_E_CLOSED', `fake TCP dial ${this.host}:${this.port}: ${e.message}`));
      });
    });
    const localAddr = parseAddr(sock.localAddress!);
    const localPort = sock.localPort!;
    this.rule = await fw.dropKernelSegments(
      `ip saddr ${formatAddr(localAddr)} ip daddr ${this.host} tcp sport ${localPort} tcp dport ${this.port}`);
    if (!setSocketTtl(sock, 1)) throw new TstierError('TSTIER_E_CLOSED', `fake TCP dial ${this.host}:${this.port}: cannot set TTL`);
    const flow = new FakeTcpFlow(localAddr, localPort, this.remoteAddr, this.port, randomBytes(4).readUInt32LE(0));
    const synAck = this.synAcks.get(localPort);
    if (synAck) {
      flow.onSegment({ srcAddr: this.remoteAddr, dstAddr: localAddr, srcPort: this.port, dstPort: localPort, flags: TCP_SYN | TCP_ACK,
        payloadStart: 0, payloadEnd: 0, ...synAck });
    }
    this.synAcks.clear();
    this.flow = flow;
    // Until now every connection to the server's port was read (the SYN-ACK's port was not known):
    // from here on only ours, so parallel sessions (--conn) do not each read all of them.
    this.raw.filter(localPort, true);
    // What the kernel receives of our peer's raw segments is read and thrown away.
    sock.on('data', () => undefined);
    sock.on('close', () => this.end('the kernel connection closed (FIN or RST)', 'closed'));
    if (sock.destroyed) this.end('the kernel connection closed during the handshake', 'closed');
  }

  private onSegment(buf: Uint8Array, seg: SegmentInfo): void {
    if (seg.srcAddr !== this.remoteAddr) {
      this.counters.orphans++;
      return;
    }
    const flow = this.flow;
    if (!flow) {
      if ((seg.flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK) && this.synAcks.size < MAX_SYNACKS) {
        this.synAcks.set(seg.dstPort, { seq: seg.seq, ack: seg.ack, tsVal: seg.tsVal });
      }
      return;
    }
    if (seg.dstPort !== flow.localPort) {
      this.counters.orphans++;
      return;
    }
    if (!flow.onSegment(seg)) return;
    this.counters.delivered++;
    this.emit('message', copyPayload(buf, seg.payloadStart, seg.payloadEnd), this.from);
  }

  /** Sends one datagram to the dialled peer (port and host are its, as for a connected UDP socket). */
  send(data: Uint8Array): void {
    const flow = this.flow;
    if (!flow || this.closed) return;
    flow.next(data.length, nowMs(), this.out);
    this.raw.send(this.builder.build(this.out, data), this.out.srcAddr, this.out.dstAddr);
  }

  address(): { address: string; port: number } {
    return { address: this.kernel?.localAddress ?? '0.0.0.0', port: this.kernel?.localPort ?? 0 };
  }

  /** Counters including what the raw socket dropped before parsing. */
  stats(): FakeTcpCounters {
    return { ...this.counters, malformed: this.raw.errors.malformed, badChecksum: this.raw.errors.badChecksum };
  }

  /** 'closed': the far end's kernel closed the connection (its process is gone); 'failed': ours broke. */
  private end(reason: string, how: 'closed' | 'failed'): void {
    if (this.closed) return;
    this.close();
    this.emit('close', reason, how);
  }

  /** Ends the connection: the kernel socket closes with a normal TTL (its FIN reaches the peer). */
  close(callback?: () => void): void {
    if (!this.closed) {
      this.closed = true;
      this.raw.close();
      if (this.kernel && !this.kernel.destroyed) {
        setSocketTtl(this.kernel, 64);
        this.kernel.end();
        this.kernel.destroySoon();
      }
      if (this.rule >= 0) void FakeTcpFirewall.get().remove(this.rule);
    }
    if (callback) queueMicrotask(callback);
  }
}
