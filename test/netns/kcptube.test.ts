/**
 * tstier-kcptube in network namespaces (names start with "tt7").
 *
 *   c (client + app) ──10.77.1.0/24── r (kcptube relay) ──10.77.2.0/24── s (server + echo app)
 *   c ──10.77.3.0/24── s                                                  stun (coturn) ── s
 *
 * The lossy impairment relay (bench/relay.ts, 5% loss each way, 10 ms delay) sits on the client's
 * leg, in the namespace of the kcptube process it feeds, forwarding to it over loopback.
 * Proves: TCP byte-exact (sha256) and UDP per datagram through client → server and through
 * client → relay → server, each leg with its own KCP mode, cipher and FEC; and the server learns
 * its public address from the namespaced STUN server and writes ip_address.txt.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Netns, unavailableReason } from './lib/netns.js';
import {
  startClientApp, startDestApp, startKcptube, startLossyRelay, tempDir, type TcpResult, type UdpResult,
} from './kcptube-lib.js';

const SKIP = unavailableReason();
const TCP_BYTES = 4 * 1024 * 1024;
const DATAGRAMS = 100;

const client = (address: string, port: string, extra: string): string => `mode=client
listen_on=127.0.0.1
listen_port=5000
destination_address=${address}
destination_port=${port}
${extra}`;

async function transferThrough(ns: Parameters<typeof startClientApp>[0]): Promise<{ tcp: TcpResult; udp: UdpResult }> {
  const app = startClientApp(ns, { host: '127.0.0.1', port: 5000, bytes: TCP_BYTES, spreadMs: 0, datagrams: DATAGRAMS });
  const tcp = await app.waitForEvent<TcpResult>('tcp', 60_000);
  const udp = await app.waitForEvent<UdpResult>('udp', 60_000);
  return { tcp, udp };
}

function assertExact(r: { tcp: TcpResult; udp: UdpResult }): void {
  assert.equal(r.tcp.bytes, TCP_BYTES);
  assert.equal(r.tcp.got, r.tcp.sent, 'TCP echo is byte-exact');
  assert.deepEqual([r.udp.matched, r.udp.mismatched, r.udp.lost], [DATAGRAMS, 0, 0], 'every UDP datagram echoed exactly');
}

test('kcptube in namespaces: direct and relayed, TCP and UDP, over a lossy path; STUN', { skip: SKIP ?? false, timeout: 120_000 }, async (t) => {
  const net = await Netns.create('tt7-kt', t);
  const files = tempDir('tt7-kcptube-');
  t.after(() => files.remove());
  const [c, r, s, stun] = [await net.ns('c'), await net.ns('r'), await net.ns('s'), await net.ns('stun')];
  await net.link(c, r, '10.77.1.1/24', '10.77.1.2/24');
  await net.link(r, s, '10.77.2.1/24', '10.77.2.2/24');
  await net.link(c, s, '10.77.3.1/24', '10.77.3.2/24');
  await net.link(stun, s, '10.77.9.1/24', '10.77.9.2/24');
  await startDestApp(s, '127.0.0.1', 7000);

  await t.test('client → server through 5% loss', async () => {
    const server = await startKcptube(s, [files.write('server.conf', `mode=server
kcp=regular3
listen_on=127.0.0.1
listen_port=4001
destination_address=127.0.0.1
destination_port=7000
encryption_algorithm=xchacha20
encryption_password=direct
fec=10:3
`)]);
    // The lossy relay runs in s, in front of the server, and forwards to it over loopback.
    const lossy = await startLossyRelay(s, '10.77.3.2:4000', '127.0.0.1:4001', 0.05, 10);
    const cl = await startKcptube(c, [files.write('client.conf', client('10.77.3.2', '4000', `kcp=regular3
encryption_algorithm=xchacha20
encryption_password=direct
fec=10:3
dport_refresh=0
`))]);
    try {
      assertExact(await transferThrough(c));
    } finally {
      for (const p of [cl, lossy, server]) await p.stop();
    }
  });

  await t.test('client → relay → server, legs with their own KCP settings, the client leg lossy', async () => {
    const server = await startKcptube(s, [files.write('server2.conf', `mode=server
kcp=fast4
listen_on=10.77.2.2
listen_port=4100-4109
destination_address=127.0.0.1
destination_port=7000
encryption_algorithm=AES-OCB
encryption_password=inner
`)]);
    const relay = await startKcptube(r, [files.write('relay.conf', `mode=relay
[listener]
kcp=regular4
listen_on=127.0.0.1
listen_port=4201
encryption_algorithm=chacha20
encryption_password=outer
fec=8:2
[forwarder]
kcp=fast4
destination_address=10.77.2.2
destination_port=4100-4109
encryption_algorithm=AES-OCB
encryption_password=inner
`)]);
    const lossy = await startLossyRelay(r, '0.0.0.0:4200', '127.0.0.1:4201', 0.05, 10);
    const cl = await startKcptube(c, [files.write('client2.conf', client('10.77.1.2', '4200', `kcp=regular4
encryption_algorithm=chacha20
encryption_password=outer
fec=8:2
dport_refresh=0
`))]);
    try {
      assertExact(await transferThrough(c));
      // Every connection crossed the relay: the server saw sessions only from the relay's address.
      assert.ok(server.lines.some((l) => /arrives on port 41\d\d from 10\.77\.2\.1:/.test(l)));
      assert.ok(!server.lines.some((l) => /from 10\.77\.[13]\./.test(l)));
    } finally {
      for (const p of [cl, lossy, relay, server]) await p.stop();
    }
  });

  await t.test('STUN: the server learns its address from coturn and writes ip_address.txt', async () => {
    const turn = stun.spawn(['turnserver', '--stun-only', '--no-cli', '--no-tls', '--no-dtls', '-L', '10.77.9.1', '-p', '3478',
      '--log-file', 'stdout', '--simple-log']);
    const logDir = tempDir('tt7-kcptube-log-');
    t.after(() => logDir.remove());
    try {
      const server = await startKcptube(s, [files.write('stun.conf', `mode=server
listen_port=4300
destination_address=127.0.0.1
destination_port=7000
stun_server=10.77.9.1:3478
log_path=${logDir.dir}
`)]);
      const m = await server.waitForLine(/STUN public address: (\S+)/, 30_000);
      assert.equal(m[1], '10.77.9.2:4300', 'no NAT here: the mapped address is our own on the STUN link');
      assert.equal(readFileSync(join(logDir.dir, 'ip_address.txt'), 'utf8').trim(), '10.77.9.2:4300');
      await server.stop();
    } finally {
      await turn.stop();
    }
  });
});
