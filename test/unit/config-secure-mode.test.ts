/** --secure-mode: the flag, ET_SECURE_MODE, TOML [secure_mode] enabled, and what it cannot run with. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNodeConfig } from '../../daemon/config/load.js';
import { parseConfigToml } from '../../daemon/config/toml-file.js';
import { TstierError } from '../../daemon/errors.js';

const ET = ['--peer-protocol', 'easytier'];
const secureMode = (argv: string[], env: NodeJS.ProcessEnv = {}): boolean | undefined => {
  const r = loadNodeConfig(argv, env);
  assert.equal(r.kind, 'config');
  return r.kind === 'config' ? r.config.secureMode : undefined;
};

test('--secure-mode, ET_SECURE_MODE and TOML [secure_mode] enabled = true all turn it on', () => {
  assert.equal(secureMode([...ET, '--secure-mode']), true);
  assert.equal(secureMode(ET, { ET_SECURE_MODE: 'true' }), true);
  assert.equal(secureMode(ET), undefined);
  assert.equal(secureMode(['--secure-mode']), true, 'no --peer-protocol needed: EasyTier\'s wire is the only one');
  const { layer, warnings } = parseConfigToml('[secure_mode]\nenabled = true\nlocal_private_key = "x"\n', 's.toml');
  assert.equal(layer.secureMode, true);
  assert.ok(warnings.some((w) => w.includes('local_private_key')), 'a key we do not take is named, not silently used');
});

test('--peer-protocol tstier is a one-line error naming the flag: the earlier protocol was removed, --secure-mode replaces it', () => {
  for (const [argv, env] of [[['--peer-protocol', 'tstier'], {}], [[], { ET_PEER_PROTOCOL: 'tstier' }]] as const) {
    assert.throws(() => loadNodeConfig([...argv], { ...env }), (e: unknown) => {
      assert.ok(e instanceof TstierError && e.code === 'TSTIER_E_BAD_CONFIG', String(e));
      assert.match(e.message, /PEER.PROTOCOL|peer-protocol/i);
      assert.match(e.message, /removed.*--secure-mode/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  }
  assert.throws(() => loadNodeConfig(['--peer-protocol', 'quic'], {}), /must be easytier/);
});

test('secure mode with --disable-encryption or xor is a one-line error naming the flag', () => {
  for (const [argv, why] of [
    [[...ET, '--secure-mode', '--disable-encryption'], /always encrypts/],
    [[...ET, '--secure-mode', '--encryption-algorithm', 'xor'], /AEAD/],
  ] as const) {
    assert.throws(() => loadNodeConfig([...argv], {}), (e: unknown) => {
      assert.ok(e instanceof TstierError && e.code === 'TSTIER_E_BAD_CONFIG', String(e));
      assert.match(e.message, /^--secure-mode: /);
      assert.match(e.message, why);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  }
});
