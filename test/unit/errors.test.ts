import { test } from 'node:test';
import assert from 'node:assert/strict';
import { badConfig, TstierError } from '../../daemon/errors.js';

test('badConfig names the key and carries a stable code', () => {
  const e = badConfig('mtu', 'must be between 576 and 1500, got 9000');
  assert.ok(e instanceof TstierError);
  assert.equal(e.code, 'TSTIER_E_BAD_CONFIG');
  assert.match(e.message, /^mtu: /);
});
