import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNodeConfig } from '../../daemon/config/load.js';
import { parseConfigToml } from '../../daemon/config/toml-file.js';
import { TstierError } from '../../daemon/errors.js';

function socks(argv: string[]): unknown {
  const r = loadNodeConfig(argv, {});
  assert.equal(r.kind, 'config');
  return r.kind === 'config' ? r.config.socks5 : null;
}

test('--socks5: a bare port binds loopback; ip:port and the URL form with credentials', () => {
  assert.deepEqual(socks(['--socks5', '1080']), { listen: '127.0.0.1:1080', credentials: null });
  assert.deepEqual(socks(['--socks5', '0.0.0.0:1080']), { listen: '0.0.0.0:1080', credentials: null });
  assert.deepEqual(socks(['--socks5', 'socks5://alice:p%40ss@[::1]:1081']),
    { listen: '[::1]:1081', credentials: { username: 'alice', password: 'p@ss' } });
  assert.equal(socks([]), undefined);
});

test('TOML socks5_proxy, as EasyTier writes it', () => {
  const { layer } = parseConfigToml('socks5_proxy = "socks5://0.0.0.0:12345"\n[flags]\nsocks5_allow_outside = true\n', 'x.toml');
  assert.deepEqual([layer.socks5, layer.socks5AllowOutside], [{ listen: '0.0.0.0:12345', credentials: null }, true]);
});

test('a bad --socks5 value is a one-line error naming the flag', () => {
  for (const bad of ['socks4://1.2.3.4:1', 'nope', '1.2.3.4:99999', 'socks5://:p@1.2.3.4:1']) {
    assert.throws(() => loadNodeConfig(['--socks5', bad], {}), (e: unknown) => {
      assert.ok(e instanceof TstierError && e.code === 'TSTIER_E_BAD_CONFIG', String(e));
      assert.match(e.message, /^--socks5: /);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    }, bad);
  }
});

test('TOML [[port_forward]] tables, as EasyTier writes them', () => {
  const { layer } = parseConfigToml('[[port_forward]]\nbind_addr = "0.0.0.0:11011"\ndst_addr = "10.144.144.3:80"\nproto = "tcp"\n', 'p.toml');
  assert.deepEqual(layer.portForwards, [{ proto: 'tcp', bind: { ip: '0.0.0.0', port: 11011 }, dst: { ip: '10.144.144.3', port: 80 } }]);
  assert.throws(() => parseConfigToml('[[port_forward]]\nbind_addr = "0.0.0.0:1"\nproto = "udp"\n', 'p.toml'), /port_forward\[0\]\.dst_addr: is missing/);
});
