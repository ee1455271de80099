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
  const r = loadNodeConfig(['--secure-mode'], {});
  assert.ok(r.kind === 'config' && r.config.peerProtocol === 'easytier', 'secure mode selects EasyTier\'s wire');
  const { layer, warnings } = parseConfigToml('[secure_mode]\nenabled = true\nlocal_private_key = "x"\n', 's.toml');
  assert.equal(layer.secureMode, true);
  assert.ok(warnings.some((w) => w.includes('local_private_key')), 'a key we do not take is named, not silently used');
});

test('secure mode with the tstier wire, --disable-encryption or xor is a one-line error naming the flag', () => {
  for (const [argv, why] of [
    [['--peer-protocol', 'tstier', '--secure-mode'], /EasyTier's wire/],
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
