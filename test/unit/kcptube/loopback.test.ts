/**
 * Client and server in this process on loopback, with a destination app in-process too:
 *  - each TCP connection gets its own KCP session; mux_tunnels=2 shares two;
 *  - TCP is paused (counted) while KCP's window is full, and a destination that reads nothing
 *    for a while loses nothing once it reads again;
 *  - a UDP flow expires after udp_timeout and its session is closed on both ends;
 *  - every listen_on address is served.
 * Waits are on log lines and socket events; the pause is a counter, polled with a bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { KcptubeClient } from '../../../daemon/kcptube/client.js';
import { parseKcptubeConfig } from '../../../daemon/kcptube/config.js';
import { TubeLog, newContext } from '../../../daemon/kcptube/log.js';
import type { TubeCounters } from '../../../daemon/kcptube/router.js';
import { KcptubeServer } from '../../../daemon/kcptube/server.js';

/** A log that keeps its lines and lets a test wait for one. */
class CapturedLog extends TubeLog {
  readonly lines: string[] = [];
  private waiters: { re: RegExp; count: number; resolve: () => void; timer: NodeJS.Timeout }[] = [];

  constructor() {
    super('test', '', 'test', false);
  }

  override line(message: string): void {
    this.lines.push(message);
    for (const w of [...this.waiters]) {
      if (this.count(w.re) >= w.count) {
        this.waiters = this.waiters.filter((x) => x !== w);
        clearTimeout(w.timer);
        w.resolve();
      }
    }
  }

  count(re: RegExp): number {
    return this.lines.filter((l) => re.test(l)).length;
  }

  /** Resolves once `count` lines match; rejects after timeoutMs with the lines so far. */
  waitFor(re: RegExp, count = 1, timeoutMs = 20_000): Promise<void> {
    if (this.count(re) >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matched ${re}:\n${this.lines.join('\n')}`)), timeoutMs);
      this.waiters.push({ re, count, resolve, timer });
    });
  }
}

async function freeUdpPorts(n: number): Promise<number[]> {
  const socks: UdpSocket[] = [];
  for (let i = 0; i < n; i++) {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    socks.push(s);
  }
  const ports = socks.map((s) => s.address().port);
  for (const s of socks) s.close();
  return ports;
}

interface Rig {
  clientCounters: TubeCounters;
  clientLog: CapturedLog;
  serverLog: CapturedLog;
  clientPort: number;
  stop(): void;
}

/** Server → destPort (TCP and UDP on 127.0.0.1), client listening on a free port. */
async function rig(destPort: number, extraClient = '', extraServer = '', clientListen = '127.0.0.1'): Promise<Rig> {
  const [serverPort, clientPort] = await freeUdpPorts(2) as [number, number];
  const common = 'kcp=regular4\nencryption_algorithm=aes-gcm\nencryption_password=loop\ndestination_address=127.0.0.1\n';
  const sc = parseKcptubeConfig('s', `mode=server\nlisten_on=127.0.0.1\nlisten_port=${serverPort}\ndestination_port=${destPort}\n${common}${extraServer}`);
  const cc = parseKcptubeConfig('c', `mode=client\nlisten_on=${clientListen}\nlisten_port=${clientPort}\ndestination_port=${serverPort}\n${common}${extraClient}`);
  assert.deepEqual([sc.issues, cc.issues], [[], []]);
  const serverLog = new CapturedLog();
  const clientLog = new CapturedLog();
  const server = new KcptubeServer(sc.config!.main, newContext(serverLog));
  const clientCtx = newContext(clientLog);
  const client = new KcptubeClient(cc.config!.main, clientCtx);
  await server.start();
  await client.start();
  return {
    clientCounters: clientCtx.counters, clientLog, serverLog, clientPort, stop: () => {
      client.stop();
      server.stop();
    },
  };
}

async function tcpServer(onConn: (s: Socket) => void): Promise<Server> {
  const srv = createServer({ allowHalfOpen: true }, onConn);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return srv;
}

const portOf = (srv: Server): number => (srv.address() as { port: number }).port;

/** Echoes `data` through the tunnel on one TCP connection; resolves with what came back. */
async function echoOnce(port: number, data: Buffer, host = '127.0.0.1'): Promise<Buffer> {
  const s = connect(port, host);
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  s.end(data);
  await once(s, 'end');
  s.destroy();
  return Buffer.concat(chunks);
}

for (const mux of [0, 2]) {
  test(`TCP connections: ${mux === 0 ? 'one KCP session each' : 'mux_tunnels=2 shares two sessions'}`, { timeout: 30_000 }, async (t) => {
    const dest = await tcpServer((s) => s.pipe(s));
    t.after(() => dest.close());
    const r = await rig(portOf(dest), mux > 0 ? `mux_tunnels=${mux}\n` : '');
    t.after(() => r.stop());
    const payloads = [randomBytes(100_000), randomBytes(1), randomBytes(300_000)];
    const back = await Promise.all(payloads.map((p) => echoOnce(r.clientPort, p)));
    for (let i = 0; i < payloads.length; i++) assert.ok(back[i]!.equals(payloads[i]!), `connection ${i} echoed exactly`);
    assert.equal(r.serverLog.count(/session \w+ created/), mux === 0 ? 3 : 2);
  });
}

test('TCP is paused, not dropped, while KCP\'s window is full; a stalled destination loses nothing', { timeout: 30_000 }, async (t) => {
  let destSocket: Socket | null = null;
  const gotDest = createHash('sha256');
  let destBytes = 0;
  const dest = await tcpServer((s) => {
    destSocket = s;
    s.pause(); // not reading: the tunnel must back up, not drop
    s.on('data', (d: Buffer) => {
      gotDest.update(d);
      destBytes += d.length;
    });
  });
  t.after(() => dest.close());
  const r = await rig(portOf(dest), 'kcp_sndwnd=64\nkcp_rcvwnd=64\n', 'kcp_sndwnd=64\nkcp_rcvwnd=64\n');
  t.after(() => r.stop());
  const app = connect(r.clientPort, '127.0.0.1');
  await once(app, 'connect');
  // Far more than the tunnel, the kernel buffers and the sleeping destination can hold.
  const TOTAL = 24 * 1024 * 1024;
  const sent = createHash('sha256');
  const chunk = randomBytes(1024 * 1024);
  for (let off = 0; off < TOTAL; off += chunk.length) {
    sent.update(chunk);
    app.write(chunk);
  }
  // The client paused its TCP socket for a full KCP window, and the destination is connected
  // (and reads nothing): wait for both (bounded).
  const deadline = Date.now() + 20_000;
  while ((r.clientCounters.tcpPauses === 0 || destSocket === null) && Date.now() < deadline) {
    await new Promise((res) => setImmediate(res));
  }
  assert.ok(r.clientCounters.tcpPauses > 0, 'the client paused the TCP socket');
  assert.ok(app.writableLength > 0, 'the application still holds bytes the tunnel did not take');
  assert.equal(destBytes, 0, 'the destination has read nothing yet');
  destSocket!.resume();
  app.end();
  await once(destSocket!, 'end');
  assert.equal(destBytes, TOTAL, 'nothing was dropped');
  assert.equal(gotDest.digest('hex'), sent.digest('hex'));
  app.destroy();
});

test('a UDP flow expires after udp_timeout; both ends close its session', { timeout: 30_000 }, async (t) => {
  const echo = createSocket('udp4');
  echo.on('message', (m, rinfo) => echo.send(m, rinfo.port, rinfo.address));
  echo.bind(0, '127.0.0.1');
  await once(echo, 'listening');
  t.after(() => echo.close());
  const r = await rig(echo.address().port, 'udp_timeout=1\n', 'udp_timeout=1\n');
  t.after(() => r.stop());
  const app = createSocket('udp4');
  t.after(() => app.close());
  app.send(Buffer.from('ping'), r.clientPort, '127.0.0.1');
  const [reply] = await once(app, 'message') as [Buffer];
  assert.equal(reply.toString(), 'ping');
  await r.serverLog.waitFor(/session \w+ ended: closed by peer/);
  assert.equal(r.serverLog.count(/session \w+ created/), 1);
});

test('the client accepts TCP on every listen_on address', { timeout: 30_000 }, async (t) => {
  const dest = await tcpServer((s) => s.pipe(s));
  t.after(() => dest.close());
  const r = await rig(portOf(dest), '', '', '127.0.0.1,127.0.0.2');
  t.after(() => r.stop());
  for (const host of ['127.0.0.1', '127.0.0.2']) {
    const data = randomBytes(50_000);
    assert.ok((await echoOnce(r.clientPort, data, host)).equals(data), host);
  }
});
