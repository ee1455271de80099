/**
 * tstier-kcptun's UDP socket (common.ts bindUdp + sessionSender): a pass's equal-size datagrams leave in
 * one GSO run and the peer's socket reads the run with GRO, cut back into the same datagrams by the
 * kernel's segment size (kcptun's datagrams carry no length of their own), byte for byte and in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { bindUdp, sessionSender } from '../../../daemon/kcptun/common.js';
import { defaultKcptunConfig } from '../../../daemon/kcptun/config.js';
import { IoErrorLog } from '../../../daemon/io/io-error-log.js';
import { BatchUdpSocket } from '../../../daemon/peer/underlay/udp-batch.js';
import { peerAddon } from '../../../daemon/peer/native.js';

test('tstier-kcptun: a run of equal datagrams and a short tail leaves in GSO sends and is read whole with GRO', async (t) => {
  const cfg = defaultKcptunConfig('client');
  const errors = new IoErrorLog(() => undefined);
  const rx = await bindUdp('127.0.0.1', 0, cfg, errors);
  const tx = await bindUdp('127.0.0.1', 0, cfg, errors);
  t.after(() => {
    rx.close();
    tx.close();
  });
  if (!(rx instanceof BatchUdpSocket) || !(tx instanceof BatchUdpSocket)) return t.skip('no peer addon');
  const got: Buffer[] = [];
  const all = new Promise<void>((resolve) => rx.on('message', (d) => {
    got.push(Buffer.from(d));
    if (got.length === 41) resolve();
  }));
  // 40 datagrams of kcptun's default 1,350 bytes and a 300-byte tail, queued in one tick.
  const sent = [...Array.from({ length: 40 }, () => randomBytes(1350)), randomBytes(300)];
  const out = sessionSender(cfg, tx, rx.address().port, '127.0.0.1', errors, () => undefined);
  for (const d of sent) out.send(d);
  await all;
  assert.deepEqual(got, sent);
  assert.equal(errors.total, 0);
  if (peerAddon()!.udpOffloads(tx.fd, false) & 1) assert.ok(rx.messages < rx.datagrams, 'the run was read as one GRO message');
});
