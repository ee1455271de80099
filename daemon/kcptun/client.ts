/**
 * kcptun client: accepts TCP on --localaddr and carries each connection as one smux stream over
 * --conn KCP sessions (slots), round robin. Slots are dialled lazily; --autoexpire retires a
 * session for new streams, and a scavenger closes it --scavengettl seconds after expiry.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { badConfig, TstierError } from '../errors.js';
import { deriveKcptunKey } from '../transport/crypt/kdf.js';
import { KcptunSession } from '../transport/session/kcptun-session.js';
import { parseHostPortRange, type KcptunConfig } from './config.js';
import { bindUdp, KcptunProcess, logSettings, resolveHost, sessionConfig, sessionSender } from './common.js';
import { capConnections, connectionBudget } from '../io/fd-budget.js';
import { nowMs } from '../io/clock.js';
import { SessionDriver, streamClosedLine } from './driver.js';
import { FakeTcpConn } from '../faketcp/dial.js';
import type { PacketSocket } from '../faketcp/packet-socket.js';

interface Slot {
  driver: SessionDriver;
  udp: PacketSocket;
  /** nowMs() after which no new streams go to this session (Infinity: never). */
  expiresAt: number;
}

export class KcptunClient {
  readonly proc: KcptunProcess;
  private server: Server | undefined;
  private readonly slots: (Slot | undefined)[];
  private rr = 0;
  private readonly pass: Uint8Array;
  private remoteHost = '';
  private readonly scavenged = new Set<Slot>();
  private scavenger: NodeJS.Timeout | undefined;
  /** TCP connections waiting for their slot's session to be dialled. */
  private dialling: Promise<Slot> | undefined;

  constructor(readonly cfg: KcptunConfig) {
    this.proc = new KcptunProcess(cfg);
    this.slots = new Array<Slot | undefined>(cfg.conn).fill(undefined);
    this.pass = deriveKcptunKey(cfg.key);
  }

  /** Resolves once the TCP listener is bound; returns its port. */
  async start(): Promise<number> {
    const cfg = this.cfg;
    const local = parseHostPortRange('--localaddr', cfg.localaddr);
    const remote = parseHostPortRange('--remoteaddr', cfg.remoteaddr);
    this.remoteHost = await resolveHost(remote.host, false);
    if (cfg.tcp && this.remoteHost.includes(':')) throw badConfig('--remoteaddr', `fake TCP (--tcp) carries IPv4 only, not ${this.remoteHost}`);
    const host = await resolveHost(local.host, true);
    // allowHalfOpen: a client's FIN travels as an smux FIN while the reply keeps flowing back.
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (s) => this.accept(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(e.code === 'EADDRINUSE'
          ? new TstierError('TSTIER_E_ADDR_IN_USE', `port already in use: tcp ${host}:${local.minPort}`)
          : new TstierError('TSTIER_E_BAD_CONFIG', `--localaddr: cannot listen on ${host}:${local.minPort}: ${e.message}`)));
      server.listen(local.minPort, host, () => resolve());
    });
    server.on('error', (e) => this.proc.ioErrors.record('accept', e));
    capConnections(server, connectionBudget(cfg.conn), (e) => this.proc.ioErrors.record('accept', e));
    const port = (server.address() as { port: number }).port;
    logSettings(this.proc, [
      ['listening on', `${host}:${port}`],
      ['remote address', cfg.remoteaddr],
      ['conn', cfg.conn],
      ['autoexpire', cfg.autoexpire],
      ['scavengettl', cfg.scavengettl],
    ]);
    this.proc.log.line('initiating key derivation');
    this.proc.log.line('key derivation done');
    this.proc.startReporting();
    if (cfg.autoexpire > 0) {
      this.scavenger = setInterval(() => this.scavenge(), 1000);
      this.scavenger.unref();
    }
    return port;
  }

  private accept(socket: Socket): void {
    socket.on('error', () => undefined);
    socket.pause();
    const idx = this.rr++ % this.slots.length;
    void this.slotFor(idx).then(
      (slot) => this.openStream(slot, socket),
      (e: Error) => {
        this.proc.ioErrors.record('dial', e);
        socket.destroy();
      },
    );
  }

  /** The live session of slot idx, dialling a new one if it is empty, closed or expired. */
  private async slotFor(idx: number): Promise<Slot> {
    const cur = this.slots[idx];
    if (cur && !cur.driver.isEnded && !cur.driver.session.closed && nowMs() < cur.expiresAt) return cur;
    if (cur && !cur.driver.isEnded) this.scavenged.add(cur);
    // One dial at a time, so a burst of connections shares the new session.
    while (this.dialling) await this.dialling.catch(() => undefined);
    const again = this.slots[idx];
    if (again && again !== cur && !again.driver.isEnded && nowMs() < again.expiresAt) return again;
    this.dialling = this.dial();
    try {
      const slot = await this.dialling;
      this.slots[idx] = slot;
      return slot;
    } finally {
      this.dialling = undefined;
    }
  }

  private async dial(): Promise<Slot> {
    const cfg = this.cfg;
    const remote = parseHostPortRange('--remoteaddr', cfg.remoteaddr);
    // Multiport: each dial picks a random port of the range (kcptun ≥ 2022-10).
    const port = remote.minPort + randomInt(remote.maxPort - remote.minPort + 1);
    const host = this.remoteHost;
    // --tcp: the datagrams travel in fake TCP segments over one real TCP handshake per session.
    const fake = cfg.tcp ? await FakeTcpConn.dial(host, port, '--tcp') : null;
    const udp: PacketSocket = fake ?? await bindUdp(host.includes(':') ? '::' : '0.0.0.0', 0, cfg, this.proc.ioErrors);
    const conv = randomBytes(4).readUInt32LE(0);
    const session = new KcptunSession(sessionConfig(cfg, this.pass, conv), this.proc.snmp, nowMs());
    const out = sessionSender(cfg, udp, port, host, this.proc.ioErrors, (d) => session.recycleTransmit(d));
    const slot: Slot = {
      udp,
      expiresAt: cfg.autoexpire > 0 ? nowMs() + cfg.autoexpire * 1000 : Infinity,
      driver: new SessionDriver(session, out.send, {
        onClosed: (_d, error) => {
          out.close();
          this.proc.sessionClosed();
          if (error) this.proc.log.line(`session closed: ${error.message}`);
          this.scavenged.delete(slot);
          udp.close();
        },
        onStreamClosed: (_d, sid, how) => this.proc.log.stream(streamClosedLine(sid, how)),
      }, cfg.closewait * 1000),
    };
    udp.on('message', (msg: Buffer, from) => {
      // Only the dialled server address is accepted (kcp-go's connected UDPSession).
      if (from.port !== port || from.address !== host) {
        this.proc.snmp.InErrs++;
        return;
      }
      slot.driver.input(msg);
    });
    // A fake TCP connection the peer or a middlebox ended takes its session with it; the slot redials.
    fake?.once('close', (why: string) => {
      this.proc.log.line(`fake TCP connection to ${host}:${port} ended: ${why}`);
      slot.driver.close();
    });
    this.proc.sessionOpened(true);
    return slot;
  }

  private openStream(slot: Slot, socket: Socket): void {
    if (socket.destroyed) return;
    const sid = slot.driver.session.openStream();
    if (sid instanceof TstierError) {
      this.proc.log.line(`open stream: ${sid.message}`);
      socket.destroy();
      return;
    }
    this.proc.log.stream(`stream opened in: ${socket.remoteAddress}:${socket.remotePort} out: ${this.cfg.remoteaddr} sid: ${sid}`);
    slot.driver.attach(sid, socket);
    socket.resume();
  }

  /** Closes expired sessions whose --scavengettl has run out. */
  private scavenge(): void {
    const now = nowMs();
    for (const slot of this.slots) if (slot && now >= slot.expiresAt) this.scavenged.add(slot);
    for (const slot of this.scavenged) {
      if (slot.driver.isEnded) this.scavenged.delete(slot);
      else if (now >= slot.expiresAt + this.cfg.scavengettl * 1000) {
        this.scavenged.delete(slot);
        slot.driver.close();
      }
    }
  }

  async stop(): Promise<void> {
    if (this.scavenger) clearInterval(this.scavenger);
    this.proc.stop();
    for (const slot of [...this.slots, ...this.scavenged]) slot?.driver.close();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
