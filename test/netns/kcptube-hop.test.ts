/**
 * Port hopping for real: the server listens on a range of ports, the client (dport_refresh=20)
 * moves to a new random port of it every 20 s during a 50-second TCP transfer. The transfer stays
 * byte-exact and one session carries it, and the server's log shows that session arriving on at
 * least three different ports. This is the one long netns test (~55 s); it waits on the app's
 * result event, never on sleeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Netns, unavailableReason } from './lib/netns.js';
import { startClientApp, startDestApp, startKcptube, tempDir, type TcpResult } from './kcptube-lib.js';

const SKIP = unavailableReason();
const SPREAD_MS = 50_000;
const BYTES = 24 * 1024 * 1024; // about 4 Mbit/s for 50 s

test('a 50-second TCP transfer survives destination-port hops (dport_refresh=20)', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  const net = await Netns.create('tt7-kth', t);
  const files = tempDir('tt7-kcptube-hop-');
  t.after(() => files.remove());
  const [c, s] = [await net.ns('c'), await net.ns('s')];
  await net.link(c, s, '10.77.5.1/24', '10.77.5.2/24');
  await startDestApp(s, '127.0.0.1', 7000);
  const server = await startKcptube(s, [files.write('server.conf', `mode=server
kcp=regular2
listen_on=10.77.5.2
listen_port=6000-6015
destination_address=127.0.0.1
destination_port=7000
encryption_algorithm=AES-GCM
encryption_password=hop
`)]);
  await startKcptube(c, [files.write('client.conf', `mode=client
kcp=regular2
listen_on=127.0.0.1
listen_port=5000
destination_address=10.77.5.2
destination_port=6000-6015
dport_refresh=20
encryption_algorithm=AES-GCM
encryption_password=hop
`)]);
  const app = startClientApp(c, { host: '127.0.0.1', port: 5000, bytes: BYTES, spreadMs: SPREAD_MS, datagrams: 0 });
  const r = await app.waitForEvent<TcpResult>('tcp', 100_000);
  assert.equal(r.bytes, BYTES);
  assert.equal(r.got, r.sent, 'byte-exact across the hops');

  const arrivals = server.lines
    .map((l) => /session (\w+) arrives on port (\d+) from/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null);
  const sessions = new Set(arrivals.map((m) => m[1]));
  const ports = new Set(arrivals.map((m) => Number(m[2])));
  assert.equal(sessions.size, 1, 'one KCP session for the one TCP connection, across every hop');
  assert.ok(ports.size >= 3, `server saw the session on ports ${[...ports].join(', ')}`);
  for (const p of ports) assert.ok(p >= 6000 && p <= 6015);
});
