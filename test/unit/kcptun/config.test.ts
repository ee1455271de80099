import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKcptunArgs, parseHostPortRange, KCPTUN_DEFAULT_KEY } from '../../../daemon/kcptun/config.js';
import { TstierError } from '../../../daemon/errors.js';
import { snmpCsvHeader } from '../../../daemon/transport/session/snmp.js';

const noEnv = {};

test('defaults match kcptun 2021 per role', () => {
  const c = parseKcptunArgs('client', [], noEnv).config;
  assert.equal(c.localaddr, ':12948');
  assert.equal(c.remoteaddr, 'vps:29900');
  assert.equal(c.key, KCPTUN_DEFAULT_KEY);
  assert.deepEqual([c.sndwnd, c.rcvwnd, c.mtu, c.datashard, c.parityshard, c.smuxver], [128, 512, 1350, 10, 3, 1]);
  assert.deepEqual([c.nodelay, c.interval, c.resend, c.nc], [0, 30, 2, 1]); // mode fast
  const s = parseKcptunArgs('server', [], noEnv).config;
  assert.equal(s.localaddr, ':29900');
  assert.equal(s.remoteaddr, '127.0.0.1:12948');
  assert.deepEqual([s.sndwnd, s.rcvwnd], [1024, 1024]);
});

test('flag spellings: -x v, --x v, --x=v, aliases, booleans, env key', () => {
  const c = parseKcptunArgs(
    'client',
    ['-l', '127.0.0.1:1', '--remoteaddr=1.2.3.4:5', '--ds', '5', '-ps=2', '--nocomp', '--mode', 'fast3', '--quiet=false'],
    { KCPTUN_KEY: 'envkey' },
  ).config;
  assert.equal(c.localaddr, '127.0.0.1:1');
  assert.equal(c.remoteaddr, '1.2.3.4:5');
  assert.deepEqual([c.datashard, c.parityshard, c.nocomp, c.quiet, c.key], [5, 2, true, false, 'envkey']);
  assert.deepEqual([c.nodelay, c.interval], [1, 10]);
  const s = parseKcptunArgs('server', ['-t', '127.0.0.1:9', '-l', ':7', '--key', 'flagkey'], { KCPTUN_KEY: 'envkey' }).config;
  assert.deepEqual([s.remoteaddr, s.localaddr, s.key], ['127.0.0.1:9', ':7', 'flagkey']);
});

test('manual mode keeps the individual flags', () => {
  const c = parseKcptunArgs('client', ['--mode', 'manual', '--nodelay', '1', '--interval', '15', '--resend', '3', '--nc', '1'], noEnv).config;
  assert.deepEqual([c.nodelay, c.interval, c.resend, c.nc], [1, 15, 3, 1]);
});

test('JSON config overrides only present keys, case-insensitively, ignoring unknown keys', () => {
  const files: Record<string, string> = {
    '/c.json': JSON.stringify({ RemoteAddr: '9.9.9.9:1', SNDWND: 64, nocomp: true, unknown: 1, crypt: null }),
  };
  const c = parseKcptunArgs('client', ['-c', '/c.json', '--rcvwnd', '99', '--crypt', 'tea'], noEnv, (p) => files[p]!).config;
  assert.deepEqual([c.remoteaddr, c.sndwnd, c.nocomp, c.rcvwnd, c.crypt], ['9.9.9.9:1', 64, true, 99, 'tea']);
});

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TstierError);
    assert.ok(!e.message.includes('\n'));
    return e.message;
  }
  assert.fail('expected an error');
}

test('bad flags and values are one-line errors naming the flag or key', () => {
  assert.match(code(() => parseKcptunArgs('client', ['--bogus'], noEnv)), /^--bogus:/);
  assert.match(code(() => parseKcptunArgs('client', ['--mtu', 'abc'], noEnv)), /^--mtu:/);
  assert.match(code(() => parseKcptunArgs('client', ['--mtu', '9000'], noEnv)), /^--mtu:/);
  assert.match(code(() => parseKcptunArgs('client', ['--crypt', 'rot13'], noEnv)), /^--crypt:/);
  assert.match(code(() => parseKcptunArgs('client', ['--mode', 'turbo'], noEnv)), /^--mode:/);
  assert.match(code(() => parseKcptunArgs('client', ['--smuxver', '3'], noEnv)), /^--smuxver:/);
  assert.match(code(() => parseKcptunArgs('client', ['--sndwnd'], noEnv)), /^--sndwnd:/);
  assert.match(code(() => parseKcptunArgs('server', ['--conn', '2'], noEnv)), /^--conn:/); // client-only flag
  assert.match(code(() => parseKcptunArgs('client', ['-c', '/x'], noEnv, () => '{"mtu": "big"}')), /"mtu"/);
  assert.match(code(() => parseKcptunArgs('client', ['-c', '/x'], noEnv, () => '{oops')), /^-c:/);
});

test('multiport host:min-max', () => {
  assert.deepEqual(parseHostPortRange('--r', '1.2.3.4:100-200'), { host: '1.2.3.4', minPort: 100, maxPort: 200 });
  assert.deepEqual(parseHostPortRange('--r', ':29900'), { host: '', minPort: 29900, maxPort: 29900 });
  assert.deepEqual(parseHostPortRange('--r', '[::1]:5'), { host: '::1', minPort: 5, maxPort: 5 });
  assert.throws(() => parseHostPortRange('--r', '1.2.3.4:200-100'), TstierError);
  assert.throws(() => parseHostPortRange('--r', 'nohost'), TstierError);
});

test('snmp CSV header has kcptun 2021 columns', () => {
  assert.equal(
    snmpCsvHeader(),
    'Unix,BytesSent,BytesReceived,MaxConn,ActiveOpens,PassiveOpens,CurrEstab,InErrs,InCsumErrors,KCPInErrors,InPkts,OutPkts,InSegs,OutSegs,InBytes,OutBytes,RetransSegs,FastRetransSegs,EarlyRetransSegs,LostSegs,RepeatSegs,FECParityShards,FECErrs,FECRecovered,FECShortShards',
  );
});
