/**
 * An exception inside one tunnel's pass (here: a send that throws something no socket error
 * handler expects) ends that tunnel with the cause, and never reaches the process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKcptubeConfig } from '../../../daemon/kcptube/config.js';
import { TunnelCipher } from '../../../daemon/kcptube/crypt.js';
import { TubeSession } from '../../../daemon/kcptube/session.js';
import { Tunnel } from '../../../daemon/kcptube/tunnel.js';
import { newSnmp } from '../../../daemon/transport/session/snmp.js';
import { nowMs } from '../../../daemon/io/clock.js';

test('a pass that throws ends its tunnel with the cause, not the process', async () => {
  const { config } = parseKcptubeConfig('t', 'mode=client\nlisten_port=1\ndestination_port=2\ndestination_address=h\n');
  const cipher = TunnelCipher.fromPassword('none', '');
  const session = new TubeSession({ sid: 5, cipher, side: config!.main, snmp: newSnmp(), now: nowMs() });
  session.sendHello({ version: 1, outboundBps: 0, inboundBps: 0 }); // the first thing to send
  session.write(1, new Uint8Array(20_000)); // and more datagrams queued behind it
  const reason = await new Promise<string>((resolve) => {
    new Tunnel(session, () => {
      throw new RangeError('boom');
    }, { onEvent: () => undefined, onEnded: (_t, r) => resolve(r) });
  });
  assert.equal(reason, 'internal error: boom');
});
