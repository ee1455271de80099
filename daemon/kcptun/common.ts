/**
 * What the kcptun client and server share: the per-session configuration built from the flags,
 * the process-wide counters and log, signals, and socket helpers.
 */
import { Socket as UdpSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { TstierError } from '../errors.js';
import { newDatagramCrypt } from '../transport/crypt/datagram.js';
import type { KcptunSessionConfig } from '../transport/session/kcptun-session.js';
import { newSnmp, snmpDump, type KcptunSnmp } from '../transport/session/snmp.js';
import type { KcptunConfig } from './config.js';
import { KcptunLog } from './log.js';
import { startSnmpLog } from './snmp-log.js';
import { Pacer } from './pacer.js';
import { IoErrorLog } from '../io/io-error-log.js';
import { DatagramBatcher, GsoSocket } from '../peer/underlay/udp-gso.js';
import { BatchUdpSocket, bindUdpSocket } from '../peer/underlay/udp-batch.js';
import type { PacketSocket } from '../faketcp/packet-socket.js';

/** The smux keepalive timeout kcptun leaves at smux's default. */
const SMUX_KEEPALIVE_TIMEOUT_MS = 30_000;

export function sessionConfig(cfg: KcptunConfig, pass: Uint8Array, conv: number): KcptunSessionConfig {
  return {
    conv,
    crypt: newDatagramCrypt(cfg.crypt, pass),
    dataShards: cfg.datashard,
    parityShards: cfg.parityshard,
    mtu: cfg.mtu,
    sndWnd: cfg.sndwnd,
    rcvWnd: cfg.rcvwnd,
    nodelay: cfg.nodelay,
    interval: cfg.interval,
    resend: cfg.resend,
    nc: cfg.nc,
    ackNoDelay: cfg.acknodelay,
    compress: !cfg.nocomp,
    role: cfg.role,
    smux: {
      version: cfg.smuxver as 1 | 2,
      maxFrameSize: cfg.framesize,
      maxReceiveBuffer: cfg.smuxbuf,
      maxStreamBuffer: Math.min(cfg.streambuf, cfg.smuxbuf),
      keepAliveInterval: cfg.keepalive * 1000,
      keepAliveTimeout: Math.max(SMUX_KEEPALIVE_TIMEOUT_MS, cfg.keepalive * 1000),
    },
  };
}

/** Process-wide state: counters (kcp-go's DefaultSnmp), log, and shutdown hooks. */
export class KcptunProcess {
  readonly snmp: KcptunSnmp = newSnmp();
  readonly log: KcptunLog;
  /** Socket errors (UDP sends, dials, accepts): counted, each cause logged once. */
  readonly ioErrors: IoErrorLog;
  private readonly stops: (() => void)[] = [];

  constructor(readonly cfg: KcptunConfig) {
    this.log = new KcptunLog(cfg.log, cfg.quiet);
    this.ioErrors = new IoErrorLog((line) => this.log.line(line));
  }

  /** SIGUSR1 dumps the counters; --snmplog writes them periodically. */
  startReporting(): void {
    const onUsr1 = (): void => this.log.line(`KCP SNMP:${snmpDump(this.snmp)}`);
    process.on('SIGUSR1', onUsr1);
    this.stops.push(() => process.off('SIGUSR1', onUsr1));
    this.stops.push(startSnmpLog(this.cfg.snmplog, this.cfg.snmpperiod, this.snmp, this.log));
  }

  sessionOpened(active: boolean): void {
    const s = this.snmp;
    if (active) s.ActiveOpens++;
    else s.PassiveOpens++;
    s.CurrEstab++;
    if (s.CurrEstab > s.MaxConn) s.MaxConn = s.CurrEstab;
  }

  sessionClosed(): void {
    this.snmp.CurrEstab--;
  }

  onStop(fn: () => void): void {
    this.stops.push(fn);
  }

  stop(): void {
    for (const f of this.stops.splice(0)) f();
  }
}

/** kcptun's startup lines (the harness and users look for "listening on:"). */
export function logSettings(p: KcptunProcess, extra: [string, string | number | boolean][]): void {
  const c = p.cfg;
  const lines: [string, string | number | boolean][] = [
    ['version', 'tstier'],
    ['smux version', c.smuxver],
    ...extra,
    ['encryption', c.crypt],
    ['nodelay parameters', `${c.nodelay} ${c.interval} ${c.resend} ${c.nc}`],
    ['sndwnd', `${c.sndwnd} rcvwnd: ${c.rcvwnd}`],
    ['compression', !c.nocomp],
    ['mtu', c.mtu],
    ['datashard', `${c.datashard} parityshard: ${c.parityshard}`],
    ['acknodelay', c.acknodelay],
    ['dscp', c.dscp],
    ['sockbuf', c.sockbuf],
    ['smuxbuf', c.smuxbuf],
    ['streambuf', c.streambuf],
    ['keepalive', c.keepalive],
    ['snmplog', c.snmplog],
    ['snmpperiod', c.snmpperiod],
    ['quiet', c.quiet],
  ];
  for (const [k, v] of lines) p.log.line(`${k}: ${v}`);
}

/** Resolves a host for UDP/TCP ("" means all interfaces for a listener, loopback for a dial). */
export async function resolveHost(host: string, forListen: boolean): Promise<string> {
  if (host === '') return forListen ? '0.0.0.0' : '127.0.0.1';
  try {
    return (await lookup(host, { family: 4 })).address;
  } catch {
    try {
      return (await lookup(host)).address;
    } catch (e) {
      throw new TstierError('TSTIER_E_BAD_CONFIG', `cannot resolve ${host}: ${(e as Error).message}`);
    }
  }
}

/** kcp-go reads datagrams into 1,500-byte buffers (its mtuLimit): a longer one is no kcptun datagram. */
const MAX_DATAGRAM = 1500;

/**
 * A UDP socket bound to host:port with kcptun's --sockbuf applied (node:dgram cannot set DSCP):
 * the peer addon's, read in batches (udp-batch.ts), or node:dgram's without the addon.
 */
export async function bindUdp(host: string, port: number, cfg: KcptunConfig, errors: IoErrorLog): Promise<PacketSocket> {
  const buffers = cfg.sockbuf > 0 ? cfg.sockbuf : 0;
  let sock: BatchUdpSocket | UdpSocket;
  try {
    // GSO runs out and GRO in: a run between two of ours is one send and one read (CPU s/GiB 0.80x on the
    // clean loopback and in the echo); a kcp-go peer's kernel cuts our runs into its datagrams, and its
    // datagrams that GRO merges are cut again by the kernel's segment size.
    sock = await bindUdpSocket(host, port, { maxDatagram: MAX_DATAGRAM, recvBufferSize: buffers, sendBufferSize: buffers, gsoSends: true, gro: true });
  } catch (e) {
    throw bindError(host, port, e as NodeJS.ErrnoException);
  }
  // Send errors (no route, address gone) are not fatal: KCP retransmits once the path is back.
  const onError = (e: Error): void => errors.record('udp', e);
  return sock instanceof BatchUdpSocket ? sock.on('error', onError) : sock.on('error', onError);
}

function bindError(host: string, port: number, e: NodeJS.ErrnoException): TstierError {
  return e.code === 'EADDRINUSE'
    ? new TstierError('TSTIER_E_ADDR_IN_USE', `port already in use: udp ${host}:${port}`)
    : new TstierError('TSTIER_E_BAD_CONFIG', `cannot bind udp ${host}:${port}: ${e.message}`);
}

export interface DatagramSender {
  send(datagram: Uint8Array): void;
  /** Sends what is queued, then stops pacing; call before closing the socket. */
  close(): void;
}

/** One batching handle per UDP socket (a server's listener serves many sessions); null: none here. */
const batching = new WeakMap<PacketSocket, GsoSocket | null>();

function batchingOf(sock: PacketSocket): GsoSocket | null {
  let gso = batching.get(sock);
  if (gso === undefined) {
    // node:dgram's socket (no addon) gets sendmmsg only: its reads could not split a GRO run again.
    gso = sock instanceof UdpSocket ? GsoSocket.for(sock, false) : sock instanceof BatchUdpSocket ? sock.gso() : null;
    batching.set(sock, gso);
  }
  return gso;
}

/**
 * A session's way out to host:port (an IP literal) on sock: a pass's datagrams leave in sendmmsg batches
 * (the peer addon's), one syscall per up to 64 where a send each cost a dgram request and a syscall;
 * or paced to --ratelimit bytes per second. A send that throws (the socket closed under it) is
 * recorded, never raised into the session's pass. Fake TCP sockets and a missing addon send one by one.
 * `recycle` gets back each datagram a batch took (the kernel copied it), so the session reuses its
 * buffer instead of allocating a zeroed one per datagram; those sent one by one are not reused.
 */
export function sessionSender(cfg: KcptunConfig, sock: PacketSocket, port: number, host: string, errors: IoErrorLog,
  recycle: (datagram: Uint8Array) => void): DatagramSender {
  const raw = (d: Uint8Array): void => {
    try {
      sock.send(d, port, host);
    } catch (e) {
      errors.record('udp send', e as Error);
    }
  };
  const gso = batchingOf(sock);
  const batcher = gso && new DatagramBatcher<Uint8Array>(gso, host, port, raw, (e) => errors.record('udp send', e), recycle);
  const out = batcher ? (d: Uint8Array): void => batcher.push(d) : raw;
  if (cfg.ratelimit <= 0) return { send: out, close: () => batcher?.flush() };
  const pacer = new Pacer(cfg.ratelimit, out);
  return {
    send: (d) => pacer.push(d),
    close: () => {
      pacer.close();
      batcher?.flush();
    },
  };
}
