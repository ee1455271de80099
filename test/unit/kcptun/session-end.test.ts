/**
 * How a kcptun server's streams end toward the target when the session ends (docs/kcptun.md): a stream
 * whose peer's FIN arrived was already closed with a FIN; a stream still open is reset, since smux
 * has no reset and a cut-off stream must not look complete. This is what the faketcp interop flake
 * was: a kcptun client killed right after its streams closed still held their FINs in its KCP queue,
 * so stopping our server then reset those target connections (the test now waits for every close to
 * reach the target first). Two in-process sessions joined by a datagram hop that can be cut, and a
 * real TCP target on loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { defaultKcptunConfig } from '../../../daemon/kcptun/config.js';
import { sessionConfig } from '../../../daemon/kcptun/common.js';
import { SessionDriver } from '../../../daemon/kcptun/driver.js';
import { deriveKcptunKey } from '../../../daemon/transport/crypt/kdf.js';
import { KcptunSession } from '../../../daemon/transport/session/kcptun-session.js';
import { newSnmp } from '../../../daemon/transport/session/snmp.js';
import { nowMs } from '../../../daemon/io/clock.js';

const CONV = 21;

function session(role: 'client' | 'server'): KcptunSession {
  const cfg = defaultKcptunConfig(role);
  return new KcptunSession(sessionConfig(cfg, deriveKcptunKey(cfg.key), CONV), newSnmp(), nowMs());
}

/** How the target saw one connection end: 'eof' (a FIN) or the error code (a reset). */
function ending(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.on('end', () => resolve('eof'));
  });
}

test('a session that ends resets only the target connections of streams its peer had not closed', { timeout: 10_000 }, async () => {
  const endings: Promise<string>[] = [];
  const firstBytes: Promise<unknown>[] = [];
  const target = createServer((s) => {
    endings.push(ending(s));
    firstBytes.push(once(s, 'data'));
  });
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  const port = (target.address() as { port: number }).port;

  let cut = false;
  const serverSession = session('server');
  const clientSession = session('client');
  const server: SessionDriver = new SessionDriver(serverSession, (d) => {
    const copy = Uint8Array.from(d);
    setImmediate(() => client.input(copy));
  }, {
    onAccept: (drv, sid) => {
      const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      socket.once('connect', () => drv.attach(sid, socket));
    },
    onClosed: () => undefined,
  }, 0);
  const client: SessionDriver = new SessionDriver(clientSession, (d) => {
    if (cut) return;
    const copy = Uint8Array.from(d);
    setImmediate(() => server.input(copy));
  }, { onClosed: () => undefined }, 0);

  try {
    const sids = [clientSession.openStream(), clientSession.openStream()] as number[];
    for (const sid of sids) assert.equal(clientSession.streamWrite(sid, Buffer.from('request')), 7);
    client.kick();
    while (firstBytes.length < 2) await new Promise((r) => setImmediate(r));
    await Promise.all(firstBytes);

    // The first stream closes and its FIN crosses: the target sees a clean end.
    clientSession.streamClose(sids[0]!);
    client.kick();
    assert.equal(await endings[0], 'eof');

    // The second closes while the hop is cut (a client killed with the FIN still queued), then the
    // server's session ends (its stop): that stream was never closed, so its target is reset.
    cut = true;
    clientSession.streamClose(sids[1]!);
    client.kick();
    server.close();
    assert.equal(await endings[1], 'ECONNRESET');
    assert.equal(server.pipes.size, 0, 'no pipe outlives the session');
  } finally {
    client.close();
    server.close();
    target.close();
  }
});
