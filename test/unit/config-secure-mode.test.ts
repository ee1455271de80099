/** --secure-mode: the flag, ET_SECURE_MODE, TOML [secure_mode] enabled, and what it cannot run with. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNodeConfig } from '../../daemon/config/load.js';
import { parseConfigToml } from '../../daemon/config/toml-file.js';
import { TstierError } from '../../daemon/errors.js';
import { EtPeerManager } from '../../daemon/peer/easytier/manager.js';
import { x25519Generate } from '../../daemon/peer/easytier/secure-noise.js';
import { quietLog } from './peer/helpers.js';

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
  const { layer } = parseConfigToml('[secure_mode]\nenabled = true\n', 's.toml');
  assert.equal(layer.secureMode, true);
  assert.equal(layer.secureStaticKey, undefined, 'no key configured: the node makes a fresh one');
});

test('[secure_mode] local_private_key (and local_public_key) as EasyTier writes them set the static key; a bad one is a one-line error naming the key', () => {
  const pair = x25519Generate();
  const b64 = (k: Uint8Array): string => Buffer.from(k).toString('base64');
  const toml = (extra: string): string => `[secure_mode]\nenabled = true\n${extra}`;
  const { layer, warnings } = parseConfigToml(toml(`local_private_key = "${b64(pair.privateKey)}"\nlocal_public_key = "${b64(pair.publicKey)}"\n`), 's.toml');
  assert.deepEqual(warnings, [], 'both keys are taken, none ignored');
  assert.deepEqual(layer.secureStaticKey, pair.privateKey);
  assert.deepEqual(parseConfigToml(toml(`local_private_key = "${b64(pair.privateKey)}"\n`), 's.toml').layer.secureStaticKey, pair.privateKey);
  const other = x25519Generate();
  for (const [extra, key, why] of [
    ['local_private_key = "x"\n', 'secure_mode.local_private_key', /base64 of a 32-byte/],
    [`local_private_key = "${b64(pair.privateKey.subarray(0, 31))}"\n`, 'secure_mode.local_private_key', /32-byte/],
    [`local_private_key = "${b64(pair.privateKey)}"\nlocal_public_key = "${b64(other.publicKey)}"\n`, 'secure_mode.local_public_key', /not the public key/],
    [`local_public_key = "${b64(pair.publicKey)}"\n`, 'secure_mode.local_public_key', /needs local_private_key/],
    ['local_private_key = 7\n', 'secure_mode.local_private_key', /must be a string/],
  ] as const) {
    assert.throws(() => parseConfigToml(toml(extra), 's.toml'), (e: unknown) => {
      assert.ok(e instanceof TstierError && e.code === 'TSTIER_E_BAD_CONFIG', String(e));
      assert.ok(e.message.startsWith(key), e.message);
      assert.match(e.message, why);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  }
});

test('a configured static key is the one the node advertises in route sync (RoutePeerInfo field 18)', async (t) => {
  const pair = x25519Generate();
  const mk = (key?: Uint8Array): EtPeerManager => new EtPeerManager({ networkName: 'n', networkSecret: 's', encryption: 'aes-gcm',
    secureMode: true, ...(key ? { secureStaticKey: key } : {}), log: quietLog, local: { hostname: 'h', ipv4: 0x0a000001, prefix: 24, proxyCidrs: [], features: 0 } });
  const [a, b] = [mk(pair.privateKey), mk()];
  t.after(() => Promise.all([a.close(), b.close()]));
  assert.deepEqual(a.core.routes.myInfo.noiseStaticPubkey, pair.publicKey);
  assert.notDeepEqual(b.core.routes.myInfo.noiseStaticPubkey, pair.publicKey, 'without one, a fresh key');
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
