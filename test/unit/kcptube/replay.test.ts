/**
 * Replaying a finished session: tstier-kcptube client and server as processes on loopback, with a
 * UDP hop between them that keeps a copy of every client datagram. After the request went through
 * and the session ended, a stranger socket replays those datagrams to the server: no session is
 * created, nothing is sent to the stranger, and the destination never sees the request again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startProc, type Proc } from '../../interop/harness.js';

const BIN = fileURLToPath(new URL('../../../../bin/tstier-kcptube', import.meta.url));
const CRYPT = 'encryption_algorithm=chacha20\nencryption_password=replay\n';
/** How long the stranger listens for an answer after the server has counted every replay. */
const QUIET_MS = 500;

async function bound(s: UdpSocket): Promise<number> {
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s.address().port;
}

/** Forwards client → server and back, keeping a copy of every client datagram. */
async function capturingHop(serverPort: number): Promise<{ port: number; captured: Buffer[]; freeze(): void; close(): void }> {
  const front = createSocket('udp4');
  const back = createSocket('udp4');
  const captured: Buffer[] = [];
  let client: RemoteInfo | null = null;
  let frozen = false;
  front.on('message', (m, r) => {
    if (frozen) return;
    client = r;
    captured.push(Buffer.from(m));
    back.send(m, serverPort, '127.0.0.1');
  });
  back.on('message', (m) => {
    if (client !== null) front.send(m, client.port, client.address);
  });
  const port = await bound(front);
  await bound(back);
  return { port, captured, freeze: () => { frozen = true; }, close: () => { front.close(); back.close(); } };
}

/** The server's counters, from the line SIGUSR1 makes it log. */
async function countersOf(p: Proc): Promise<Record<string, number>> {
  const dumps = (out: string): number => out.match(/counters \{/g)?.length ?? 0;
  const seen = dumps(p.output());
  p.child.kill('SIGUSR1');
  await p.waitFor((out) => dumps(out) > seen);
  const all = [...p.output().matchAll(/counters (\{.*\})/g)];
  return (JSON.parse(all.at(-1)![1]!) as { tube: Record<string, number> }).tube;
}

test('a finished session cannot be revived: a replay from a stranger creates nothing, reaches nobody, sends nothing', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kcptube-replay-'));
  const cleanup: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];
  t.after(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  // The destination: counts connections and every request line, answers each.
  const requests: string[] = [];
  let connections = 0;
  const dest = createServer((s: Socket) => {
    connections++;
    s.on('data', (d) => {
      requests.push(d.toString());
      s.end('REPLY\n');
    });
    s.on('error', () => undefined);
  });
  dest.listen(0, '127.0.0.1');
  await once(dest, 'listening');
  cleanup.push(() => dest.close());
  const destPort = (dest.address() as { port: number }).port;

  const serverPort = await freePort();
  const clientPort = await freePort();
  const hop = await capturingHop(serverPort);
  cleanup.push(() => hop.close());
  const serverConf = join(dir, 'server.conf');
  writeFileSync(serverConf, `mode=server\nlisten_on=127.0.0.1\nlisten_port=${serverPort}\ndestination_address=127.0.0.1\ndestination_port=${destPort}\n${CRYPT}`);
  const clientConf = join(dir, 'client.conf');
  writeFileSync(clientConf, `mode=client\nlisten_on=127.0.0.1\nlisten_port=${clientPort}\ndestination_address=127.0.0.1\ndestination_port=${hop.port}\n${CRYPT}`);
  const server = startProc(process.execPath, [BIN, serverConf]);
  cleanup.push(() => server.kill());
  const client = startProc(process.execPath, [BIN, clientConf]);
  cleanup.push(() => client.kill());
  await server.waitFor('tstier-kcptube ready');
  await client.waitFor('tstier-kcptube ready');

  // One request through the tunnel; the application closes, so the session ends on both sides.
  const app = connect(clientPort, '127.0.0.1');
  await once(app, 'connect');
  app.end('REQUEST\n');
  let reply = '';
  app.on('data', (d) => (reply += d.toString()));
  await once(app, 'close');
  assert.equal(reply, 'REPLY\n');
  await server.waitFor(/session [0-9a-f]+ ended/);
  assert.deepEqual(requests, ['REQUEST\n']);
  const created = (): number => server.output().match(/session [0-9a-f]+ created/g)?.length ?? 0;
  assert.equal(created(), 1);
  assert.ok(hop.captured.length > 0);

  // A stranger replays every datagram the client sent. The client itself may still send a late
  // datagram of its ended session (a repeated ACK, which the server also counts as a finished
  // session's): the hop stops carrying the client, and the count below starts after what it carried.
  hop.freeze();
  const base = (await countersOf(server)).endedSession!;
  const stranger = createSocket('udp4');
  cleanup.push(() => stranger.close());
  const heard: Buffer[] = [];
  stranger.on('message', (m) => heard.push(m));
  await bound(stranger);
  for (const d of hop.captured) stranger.send(d, serverPort, '127.0.0.1');
  // The counters say when the server has seen them all; then give any answer time to arrive.
  const before = hop.captured.length;
  let tube = await countersOf(server);
  for (let i = 0; i < 100 && tube.endedSession! < base + before; i++) tube = await countersOf(server);
  assert.equal(tube.endedSession! - base, before, `every replayed datagram was refused as a finished session's: ${JSON.stringify(tube)}, ${base} before the replay`);
  await new Promise((r) => setTimeout(r, QUIET_MS));
  assert.equal(created(), 1, `no session was created:\n${server.output()}`);
  assert.equal(heard.length, 0, 'nothing was sent to the stranger');
  assert.equal(connections, 1, 'the destination was not dialled again');
  assert.deepEqual(requests, ['REQUEST\n'], 'nor did it get the request twice');
  assert.equal(server.child.exitCode, null);
});
