import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNodeConfig } from '../../../daemon/config/load.js';
import { parseConfigToml } from '../../../daemon/config/toml-file.js';
import type { NodeConfig } from '../../../daemon/config/node-config.js';
import { kcpSettingsText, PROXY_KCP_DEFAULTS, proxyKcpSettings } from '../../../daemon/proxy/kcp-tuning.js';

function cfg(argv: string[], env: NodeJS.ProcessEnv = {}): NodeConfig {
  const r = loadNodeConfig(argv, env);
  assert.equal(r.kind, 'config');
  return (r as { config: NodeConfig }).config;
}

test('no flag: fast3, 1024-segment windows, datagrams of the TUN\'s MTU', () => {
  assert.deepEqual(proxyKcpSettings(cfg([])), PROXY_KCP_DEFAULTS);
  assert.equal(kcpSettingsText(PROXY_KCP_DEFAULTS), 'mode=default nodelay=1 interval=10 resend=2 nc=1 sndwnd=1024 rcvwnd=1024 mtu=1380');
});

test('the datagram size follows --mtu up to 1400; --kcp-mtu overrides it', () => {
  assert.equal(proxyKcpSettings(cfg(['--mtu', '1280'])).mtu, 1280);
  assert.equal(proxyKcpSettings(cfg(['--mtu', '9000'])).mtu, 1400);
  assert.equal(proxyKcpSettings(cfg(['--mtu', '1280', '--kcp-mtu', '1100'])).mtu, 1100);
});

test('a mode sets the NoDelay knobs, explicit flags override them; manual starts from kcptun defaults', () => {
  assert.deepEqual(proxyKcpSettings(cfg(['--kcp-mode', 'normal'])),
    { ...PROXY_KCP_DEFAULTS, mode: 'normal', nodelay: 0, interval: 40, resend: 2, nc: 1 });
  assert.deepEqual(proxyKcpSettings(cfg(['--kcp-mode', 'fast2', '--kcp-interval', '15', '--kcp-sndwnd', '64', '--kcp-mtu', '900'])),
    { ...PROXY_KCP_DEFAULTS, mode: 'fast2', nodelay: 1, interval: 15, resend: 2, nc: 1, sndWnd: 64, mtu: 900 });
  assert.deepEqual(proxyKcpSettings(cfg(['--kcp-mode', 'manual', '--kcp-resend', '3'])),
    { ...PROXY_KCP_DEFAULTS, mode: 'manual', nodelay: 0, interval: 50, resend: 3, nc: 0 });
});

test('ET_KCP_* and the [kcp] TOML table', () => {
  const env = { ET_KCP_MODE: 'fast', ET_KCP_NODELAY: '2', ET_KCP_INTERVAL: '20', ET_KCP_RESEND: '0', ET_KCP_NC: '0',
    ET_KCP_SNDWND: '128', ET_KCP_RCVWND: '256', ET_KCP_MTU: '1300' };
  assert.deepEqual(proxyKcpSettings(cfg([], env)),
    { mode: 'fast', nodelay: 2, interval: 20, resend: 0, nc: 0, sndWnd: 128, rcvWnd: 256, mtu: 1300 });
  const { layer, warnings } = parseConfigToml('[kcp]\nmode = "fast3"\nrcvwnd = 2048\n', 'k.toml');
  assert.deepEqual([layer.kcpMode, layer.kcpRcvwnd, warnings], ['fast3', 2048, []]);
});

test('bad values name their flag', () => {
  const bad: Array<[string[], RegExp]> = [
    [['--kcp-mode', 'turbo'], /TstierError: --kcp-mode: must be one of normal, fast, fast2, fast3, manual/],
    [['--kcp-nodelay', '3'], /TstierError: --kcp-nodelay: must be an integer in 0\.\.2/],
    [['--kcp-interval', '5'], /TstierError: --kcp-interval: must be an integer in 10\.\.5000/],
    [['--kcp-sndwnd', '100000'], /TstierError: --kcp-sndwnd: must be an integer in 16\.\.4096/],
    [['--kcp-mtu', '1500'], /TstierError: --kcp-mtu: must be an integer in 256\.\.1400/],
    [['--kcp-nc', 'yes'], /TstierError: --kcp-nc: /],
  ];
  for (const [argv, re] of bad) assert.throws(() => loadNodeConfig(argv, {}), re);
});
