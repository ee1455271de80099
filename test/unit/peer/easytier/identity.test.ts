import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SipHash13 } from '../../../../daemon/peer/easytier/siphash.js';
import { isZeroDigest, key128, key256, secretDigest } from '../../../../daemon/peer/easytier/identity.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('SipHash-1-3 with zero keys: the empty input, and any split of a stream hashes alike', () => {
  assert.equal(new SipHash13().finish(), 0xd1fba762150c532cn);
  const data = Buffer.from('the quick brown fox jumps over the lazy dog, twice over');
  const whole = new SipHash13().write(data).finish();
  for (const cut of [0, 1, 7, 8, 9, 23, data.length]) {
    assert.equal(new SipHash13().write(data.subarray(0, cut)).write(data.subarray(cut)).finish(), whole, `cut at ${cut}`);
  }
  const h = new SipHash13().write(data);
  assert.equal(h.finish(), h.finish(), 'finish leaves the state as it was');
});

test('secret digest: the spec vectors', () => {
  assert.equal(hex(secretDigest('wspec-net', 'wspec-secret')), '88690c4717bfab8b065d473abb70ba99ca8445c536ba3173544764eeae027adf');
  assert.equal(hex(secretDigest('default', '')), '02e2bcd8739ae03985d61303fbec09210289c243231b1dcaa5bbb1f191f9b993');
  assert.notEqual(hex(secretDigest('wspec-net', 'wspec-secreT')), hex(secretDigest('wspec-net', 'wspec-secret')));
  assert.equal(isZeroDigest(new Uint8Array(32)), true);
  assert.equal(isZeroDigest(secretDigest('default', '')), false);
});

test('payload keys: the spec vectors', () => {
  assert.equal(hex(key128('wspec-secret')), '0d6f42bd47e60c0f278ba93c718c7237');
  assert.equal(hex(key256('wspec-secret')), '8d43e92d7746c2cffa065683efcc969afaffbedf5ef897c490a6c35eb9047477');
  assert.equal(hex(key128('')), 'd1fba762150c532c4cf426633e76377d');
});
