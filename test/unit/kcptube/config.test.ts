import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DPORT_REFRESH_DEFAULT, KCP_MTU_DEFAULT, KCP_MTU_FEC_DEFAULT, UDP_TIMEOUT_DEFAULT, loadKcptubeConfig, parseBandwidth,
  parseKcptubeConfig, parsePortRange, type KcptubeConfig,
} from '../../../daemon/kcptube/config.js';
import { KCPTUBE_PRESETS } from '../../../daemon/kcptube/modes.js';

const CLIENT = `mode=client
kcp=regular3
listen_port=5099
destination_port=30000-30010
destination_address=127.0.0.1
encryption_password=qwerty1234
encryption_algorithm=AES-GCM
`;

function ok(text: string): KcptubeConfig {
  const { config, issues } = parseKcptubeConfig('t.conf', text);
  assert.deepEqual(issues, []);
  assert.ok(config);
  return config;
}

function keysOf(text: string): string[] {
  return parseKcptubeConfig('t.conf', text).issues.map((i) => i.key);
}

test('a client file: every key and its defaults', () => {
  const c = ok(CLIENT);
  assert.equal(c.mode, 'client');
  const m = c.main;
  assert.deepEqual(m.listenPorts, { start: 5099, end: 5099 });
  assert.deepEqual(m.destinationPorts, { start: 30000, end: 30010 });
  assert.deepEqual(m.destinationAddresses, ['127.0.0.1']);
  assert.equal(m.encryption, 'aes-gcm');
  assert.equal(m.password, 'qwerty1234');
  assert.equal(m.dportRefresh, DPORT_REFRESH_DEFAULT);
  assert.equal(m.udpTimeout, UDP_TIMEOUT_DEFAULT);
  assert.equal(m.keepAlive, 0);
  assert.equal(m.muxTunnels, 0);
  assert.equal(m.kcpMtu, KCP_MTU_DEFAULT);
  assert.deepEqual(
    { s: m.sndWnd, r: m.rcvWnd, d: m.nodelay, i: m.interval, re: m.resend, nc: m.nc },
    { s: 1024, r: 1024, d: 0, i: 1, re: 2, nc: 1 },
  );
  assert.equal(c.forwarder, null);
  assert.equal(m.blast, true, "kcptube's default");
  assert.equal(ok(CLIENT + 'blast=0\n').main.blast, false);
});

test('every optional key parses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kcptube-cfg-'));
  try {
    const c = ok(`mode=client
listen_on=127.0.0.1, ::1
listen_port=7000
destination_address=10.0.0.1,[fd00::1],host.example
destination_port=4000
dport_refresh=5
encryption_algorithm=xchacha20
encryption_password=p
udp_timeout=30
keep_alive=7
mux_tunnels=4
stun_server=stun.example
log_path=${dir}
fec=20:4
mtu=1400
kcp=manual
kcp_sndwnd=300
kcp_rcvwnd=400
kcp_nodelay=2
kcp_interval=20
kcp_resend=3
kcp_nc=no
outbound_bandwidth=100M
inbound_bandwidth=50m
ipv4_only=yes
blast=true
`);
    const m = c.main;
    assert.deepEqual(m.listenOn, ['127.0.0.1', '::1']);
    assert.deepEqual(m.destinationAddresses, ['10.0.0.1', 'fd00::1', 'host.example']);
    assert.equal(m.dportRefresh, 20, 'below 20 is raised to 20');
    assert.equal(m.encryption, 'xchacha20');
    assert.equal(m.udpTimeout, 30);
    assert.equal(m.keepAlive, 7);
    assert.equal(m.muxTunnels, 4);
    assert.equal(m.stunServer, 'stun.example');
    assert.equal(m.logPath, dir);
    assert.deepEqual([m.fecData, m.fecRedundant], [20, 4]);
    // 1400 − 48 (IPv6 + UDP) − 9 (tunnel header) − 40 (xchacha nonce + tag) − 8 (FEC header)
    assert.equal(m.kcpMtu, 1295);
    assert.deepEqual(
      { s: m.sndWnd, r: m.rcvWnd, d: m.nodelay, i: m.interval, re: m.resend, nc: m.nc },
      { s: 300, r: 400, d: 2, i: 20, re: 3, nc: 0 },
    );
    assert.equal(m.outboundBandwidth, 100 * 1024 * 1024);
    assert.equal(m.inboundBandwidth, 50_000_000);
    assert.equal(m.ipv4Only, true);
    assert.equal(m.ipv6Only, false);
    assert.equal(m.blast, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dport_refresh: absent 60, 0 off, clamped to [20, 32767]; FEC moves the default kcp_mtu', () => {
  assert.equal(ok(CLIENT + 'dport_refresh=0\n').main.dportRefresh, 0);
  assert.equal(ok(CLIENT + 'dport_refresh=1\n').main.dportRefresh, 20);
  assert.equal(ok(CLIENT + 'dport_refresh=40000\n').main.dportRefresh, 32767);
  assert.equal(ok(CLIENT + 'fec=10:3\n').main.kcpMtu, KCP_MTU_FEC_DEFAULT);
  assert.deepEqual([ok(CLIENT + 'fec=10:0\n').main.fecData], [0], 'a zero side turns FEC off');
});

test('bandwidth suffixes: upper case binary, lower case decimal, bits per second', () => {
  assert.equal(parseBandwidth('1000'), 1000);
  assert.equal(parseBandwidth('100k'), 100_000);
  assert.equal(parseBandwidth('100K'), 102_400);
  assert.equal(parseBandwidth('100M'), 100 * 1024 * 1024);
  assert.equal(parseBandwidth('100m'), 100_000_000);
  assert.equal(parseBandwidth('1G'), 1024 ** 3);
  assert.equal(parseBandwidth('1g'), 1e9);
  for (const bad of ['', 'M', '10 M', '10MB', '1.5M', '-1', '300MM']) assert.equal(parseBandwidth(bad), null, bad);
});

test('port ranges', () => {
  assert.deepEqual(parsePortRange('80'), { start: 80, end: 80 });
  assert.deepEqual(parsePortRange('3000-3010'), { start: 3000, end: 3010 });
  for (const bad of ['0', '65536', '10-5', 'a', '1-2-3', '']) assert.equal(parsePortRange(bad), null, bad);
});

test('mode tables: every preset as kcptube defines it, windows overridable', () => {
  const want: Record<string, [number, number, number, number]> = {
    fast1: [2048, 1, 0, 2], fast2: [2048, 2, 0, 2], fast3: [2048, 1, 1, 3], fast4: [2048, 2, 1, 3],
    fast5: [2048, 1, 1, 4], fast6: [2048, 2, 1, 4], regular1: [1024, 1, 1, 5], regular2: [1024, 2, 1, 5],
    regular3: [1024, 0, 1, 2], regular4: [1024, 0, 15, 2], regular5: [1024, 0, 30, 2],
  };
  for (const [mode, [wnd, nodelay, interval, resend]] of Object.entries(want)) {
    const m = ok(CLIENT.replace('kcp=regular3', `kcp=${mode}`)).main;
    assert.deepEqual([m.sndWnd, m.rcvWnd, m.nodelay, m.interval, m.resend, m.nc], [wnd, wnd, nodelay, interval, resend, 1], mode);
    assert.deepEqual(KCPTUBE_PRESETS[mode as keyof typeof KCPTUBE_PRESETS].sndWnd, wnd);
  }
  const o = ok(CLIENT + 'kcp_sndwnd=4096\nkcp_rcvwnd=512\nkcp_resend=9\n').main;
  assert.deepEqual([o.sndWnd, o.rcvWnd, o.resend, o.interval], [4096, 512, 9, 1]);
  assert.equal(ok(CLIENT.replace('kcp=regular3\n', '')).main.interval, 30, 'no kcp= means regular5');
});

test('relay: [listener] and [forwarder] each get their own KCP settings, top-level keys are shared', () => {
  const c = ok(`mode=relay
encryption_algorithm=chacha20
encryption_password=shared
[listener]
kcp=regular3
listen_port=3000-3010
[forwarder]
kcp=fast2
destination_port=13000-13010
destination_address=10.1.1.1
encryption_algorithm=AES-OCB
`);
  assert.equal(c.mode, 'relay');
  assert.equal(c.main.kcp, 'regular3');
  assert.equal(c.main.encryption, 'chacha20');
  assert.deepEqual(c.main.listenPorts, { start: 3000, end: 3010 });
  assert.equal(c.forwarder?.kcp, 'fast2');
  assert.equal(c.forwarder?.encryption, 'aes-ocb');
  assert.equal(c.forwarder?.password, 'shared');
  assert.deepEqual(c.forwarder?.destinationPorts, { start: 13000, end: 13010 });
});

test('every bad key is reported by name, and the parse never throws', () => {
  const keys = keysOf(`mode=client
listen_port=99999
destination_port=abc
destination_address=1.2.3.4
encryption_algorithm=rot13
kcp=warp9
fec=300:3
outbound_bandwidth=10MB
inbound_bandwidth=fast
ipv4_only=maybe
udp_timeout=-3
bogus_key=1
log_path=/nonexistent/dir
kcp_mtu=1499
`);
  for (const k of [
    'listen_port', 'destination_port', 'encryption_algorithm', 'kcp', 'fec', 'outbound_bandwidth', 'inbound_bandwidth',
    'ipv4_only', 'udp_timeout', 'bogus_key', 'log_path', 'kcp_mtu',
  ]) {
    assert.ok(keys.includes(k), `${k} missing from ${keys.join(',')}`);
  }
  assert.deepEqual(keysOf('listen_port=1\n'), ['mode']);
  assert.ok(keysOf('mode=client\n').includes('destination_address'));
  assert.ok(keysOf('mode=server\nlisten_port=1\ndestination_port=2\ndestination_address=h\nencryption_algorithm=aes-gcm\n').includes('encryption_password'));
  assert.ok(keysOf('mode=client\nkcp=manual\nlisten_port=1\ndestination_port=2\ndestination_address=h\n').includes('kcp_interval'));
  assert.ok(keysOf('mode=relay\n[listener]\nlisten_port=1\n').includes('[forwarder]'));
  assert.ok(keysOf('mode=server\n[listener]\n').includes('[listener]'));
  assert.ok(keysOf('mode=server\nlisten_port=1-5\nstun_server=s\ndestination_port=2\ndestination_address=h\n').includes('stun_server'));
  assert.ok(keysOf('mode=server\nlisten_port=1\ndestination_port=2\ndestination_address=h\nmux_tunnels=3\n').includes('mux_tunnels'));
  assert.ok(keysOf(CLIENT + 'ipv4_only=1\nipv6_only=1\n').includes('ipv6_only'));
  // Garbage lines of every shape.
  for (const junk of ['\u0000\u0001', '[[[', '=', '= =', 'mode', 'x'.repeat(10000), '\ufeffmode=client']) {
    assert.doesNotThrow(() => parseKcptubeConfig('j', junk));
  }
});

test('loadKcptubeConfig: one error with a code, naming every bad key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kcptube-cfg-'));
  try {
    const f = join(dir, 'bad.conf');
    writeFileSync(f, 'mode=client\nfec=x\nkcp=nope\n');
    assert.throws(() => loadKcptubeConfig(f), (e: Error & { code?: string }) =>
      e.code === 'TSTIER_E_BAD_CONFIG' && /fec/.test(e.message) && /kcp/.test(e.message) && /listen_port/.test(e.message));
    assert.throws(() => loadKcptubeConfig(join(dir, 'absent.conf')), { code: 'TSTIER_E_BAD_CONFIG' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
