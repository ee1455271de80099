/**
 * An exception inside one session's pass (here: a send that throws something no socket error
 * handler expects) ends that session with the cause, and never reaches the process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultKcptunConfig } from '../../../daemon/kcptun/config.js';
import { sessionConfig } from '../../../daemon/kcptun/common.js';
import { SessionDriver } from '../../../daemon/kcptun/driver.js';
import { deriveKcptunKey } from '../../../daemon/transport/crypt/kdf.js';
import { KcptunSession } from '../../../daemon/transport/session/kcptun-session.js';
import { newSnmp } from '../../../daemon/transport/session/snmp.js';
import { nowMs } from '../../../daemon/io/clock.js';
import type { TstierError } from '../../../daemon/errors.js';

test('a pass that throws ends its session with the cause, not the process', async () => {
  const cfg = defaultKcptunConfig('client');
  const session = new KcptunSession(sessionConfig(cfg, deriveKcptunKey(cfg.key), 7), newSnmp(), nowMs());
  const closed = new Promise<TstierError | null>((resolve) => {
    const driver = new SessionDriver(session, () => {
      throw new RangeError('boom');
    }, { onClosed: (_d, error) => resolve(error) }, 0);
    assert.equal(typeof session.openStream(), 'number'); // its SYN is the first thing to send
    driver.kick();
  });
  const error = await closed;
  assert.equal(error?.code, 'TSTIER_E_CLOSED');
  assert.equal(error?.message, 'internal error: boom');
});
