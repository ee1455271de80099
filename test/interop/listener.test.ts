/**
 * The server's session table follows kcp-go's Listener (docs/kcptun-wire.md §7), checked in-process over loopback:
 * sessions are keyed by source address; another conv from the same address takes over only when its
 * first segment has sn 0; otherwise it is dropped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { parseKcptunArgs } from '../../daemon/kcptun/config.js';
import { KcptunServer } from '../../daemon/kcptun/server.js';
import { sessionConfig } from '../../daemon/kcptun/common.js';
import { deriveKcptunKey } from '../../daemon/transport/crypt/kdf.js';
import { newDatagramCrypt } from '../../daemon/transport/crypt/datagram.js';
import { KcptunSession } from '../../daemon/transport/session/kcptun-session.js';
import { newSnmp } from '../../daemon/transport/session/snmp.js';
import { peekConvSn } from '../../daemon/transport/session/route.js';

const KEY = 'listener';

/** A client session driven by hand over one shared UDP socket. */
class HandClient {
  readonly session: KcptunSession;
  private readonly opener = newDatagramCrypt('aes', deriveKcptunKey(KEY));
  now = 0;

  constructor(
    private readonly udp: UdpSocket,
    private readonly port: number,
    conv: number,
  ) {
    const cfg = parseKcptunArgs('client', ['--key', KEY, '--quiet'], {}).config;
    this.session = new KcptunSession(sessionConfig(cfg, deriveKcptunKey(KEY), conv), newSnmp(), 0);
  }

  /** Sends what the session has queued; `keep` decides per datagram (by its first segment's sn). */
  async flush(keep: (sn: number) => boolean = () => true): Promise<number> {
    this.now += 40;
    if (this.now >= this.session.pollTimeout()) this.session.handleTimeout(this.now);
    this.session.pump(this.now);
    let sent = 0;
    for (let d = this.session.pollTransmit(); d !== null; d = this.session.pollTransmit()) {
      // Peek at a decrypted copy to learn the sn; send the sealed original.
      const copy = Uint8Array.from(d);
      const off = this.opener.open(copy, copy.length);
      const route = { conv: 0, sn: -1 };
      if (off >= 0 && peekConvSn(copy, off, copy.length, route) && !keep(route.sn)) continue;
      await new Promise<void>((res) => this.udp.send(d, this.port, '127.0.0.1', () => res()));
      sent++;
    }
    return sent;
  }

  input(d: Uint8Array): void {
    this.session.input(d, this.now);
  }

  /** Opens a stream and queues `text` on it. */
  say(text: string): void {
    const sid = this.session.openStream();
    assert.equal(typeof sid, 'number');
    this.session.streamWrite(sid as number, new TextEncoder().encode(text));
  }
}

test('listener: one session per source address; sn 0 from a new conv takes over, other convs are dropped', { timeout: 30_000 }, async (t) => {
  // Target: collects what each connection says.
  const heard: string[] = [];
  const waiters: (() => void)[] = [];
  const target = createServer((s: Socket) => {
    s.on('data', (d: Buffer) => {
      heard.push(d.toString());
      waiters.splice(0).forEach((w) => w());
    });
    s.on('error', () => undefined);
  });
  target.listen(0, '127.0.0.1');
  await once(target, 'listening');
  const tport = (target.address() as { port: number }).port;
  const cfg = parseKcptunArgs('server', ['-l', '127.0.0.1:0', '-t', `127.0.0.1:${tport}`, '--key', KEY, '--quiet', '--log', '/dev/null'], {}).config;
  const server = new KcptunServer(cfg);
  const [port] = await server.start();
  const udp = createSocket('udp4');
  await new Promise<void>((res) => udp.bind(0, '127.0.0.1', () => res()));
  t.after(async () => {
    udp.close();
    await server.stop();
    target.close();
  });
  const clients = new Map<number, HandClient>();
  udp.on('message', (m: Buffer) => {
    // Replies go to whichever hand client owns the conv (all share this socket).
    const opener = newDatagramCrypt('aes', deriveKcptunKey(KEY));
    const copy = Uint8Array.from(m);
    const off = opener.open(copy, copy.length);
    const route = { conv: 0, sn: 0 };
    if (off >= 0 && peekConvSn(copy, off, copy.length, route)) clients.get(route.conv)?.input(m);
  });
  const hear = async (text: string, c: HandClient): Promise<void> => {
    for (let i = 0; i < 200 && !heard.includes(text); i++) {
      const arrived = new Promise<void>((res) => waiters.push(res));
      await c.flush();
      await Promise.race([arrived, new Promise((r) => setTimeout(r, 20))]);
    }
    assert.ok(heard.includes(text), `target heard ${JSON.stringify(text)}`);
  };

  const a = new HandClient(udp, port!, 0xaaaa0001);
  clients.set(0xaaaa0001, a);
  a.say('from A');
  await hear('from A', a);
  assert.equal(server.proc.snmp.PassiveOpens, 1);

  // Same address, another conv, but its sn-0 datagrams are withheld: dropped, A's session stays.
  const c = new HandClient(udp, port!, 0xcccc0003);
  clients.set(0xcccc0003, c);
  // Longer than one segment even after snappy, so later datagrams start at sn 1, 2, ...
  c.say(`from C ${randomBytes(6000).toString('base64')}`);
  let sentC = 0;
  for (let i = 0; i < 5; i++) sentC += await c.flush((sn) => sn !== 0);
  assert.ok(sentC > 0, 'C sent datagrams without sn 0');
  a.say('from A again');
  await hear('from A again', a);
  assert.equal(server.proc.snmp.PassiveOpens, 1, 'no takeover without sn 0');

  // Same address, new conv starting at sn 0 (a restarted client): it replaces A's session.
  const b = new HandClient(udp, port!, 0xbbbb0002);
  clients.set(0xbbbb0002, b);
  b.say('from B');
  await hear('from B', b);
  assert.equal(server.proc.snmp.PassiveOpens, 2);
  assert.equal(server.proc.snmp.CurrEstab, 1, "A's session was closed");
  assert.ok(!heard.some((h) => h.startsWith('from C')));
});
