/**
 * The prototype EasyTier node core on a virtual clock, nodes wired back to back in memory:
 * handshake, route sync (direct and through a relay), relayed Data, ping liveness, and refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EtNodeCore, INFO_REFRESH_MS, type EtNodeEvent } from '../../../../daemon/peer/easytier/node-core.js';
import { etCipher } from '../../../../daemon/peer/easytier/cipher.js';
import { secretDigest } from '../../../../daemon/peer/easytier/identity.js';
import { EtPacketType, buildPm, splitPm } from '../../../../daemon/peer/easytier/pm.js';
import { encodeHandshake, ourHandshake } from '../../../../daemon/peer/easytier/handshake.js';
import { ET_CONN_TIMERS, type EtConnTimers } from '../../../../daemon/peer/easytier/conn.js';
import { etConnTimers } from '../../../../daemon/node/peer-layer.js';
import { DEFAULT_TIMERS } from '../../../../daemon/peer/peer-layer.js';
import { FAST_PEER } from '../helpers.js';

const NET = 'sim-net';

function node(peerId: number, secret = 's3cret', ipv4?: number, now = 0, timers?: EtConnTimers): EtNodeCore {
  const me = { peerId, networkName: NET, digest: secretDigest(NET, secret) };
  return new EtNodeCore({
    timers,
    me,
    cipher: etCipher('aes-gcm', secret),
    now,
    info: {
      peerId, instId: randomBytes(16), networkLength: 24, proxyCidrs: [], hostname: `n${peerId}`, udpNatType: 0, version: 1,
      easytierVersion: '2.6.4-tstier', featureFlag: {}, peerRouteId: 1n, ...(ipv4 !== undefined ? { ipv4 } : {}),
    },
  });
}

/** Links between cores: key "a>b" on a's side pairs with "b>a" on b's. `cut` drops packets of a type. */
class World {
  now = 0;
  readonly nodes = new Map<number, EtNodeCore>();
  readonly events = new Map<number, EtNodeEvent[]>();
  cut: ((pm: Uint8Array) => boolean) | null = null;

  add(...ns: [number, EtNodeCore][]): void {
    for (const [id, n] of ns) {
      this.nodes.set(id, n);
      this.events.set(id, []);
    }
  }

  link(a: number, b: number): void {
    this.nodes.get(b)!.addConn(`${b}>${a}`, 'listener', this.now);
    this.nodes.get(a)!.addConn(`${a}>${b}`, 'dialler', this.now);
    this.pump();
  }

  /** Delivers everything in flight, repeatedly, until quiet. */
  pump(): void {
    for (let moved = true, rounds = 0; moved && rounds < 1000; rounds++) {
      moved = false;
      for (const [id, n] of this.nodes) {
        for (let ev = n.pollEvent(); ev; ev = n.pollEvent()) this.events.get(id)!.push(ev);
        for (let out = n.pollTransmit(); out; out = n.pollTransmit()) {
          moved = true;
          if (this.cut?.(out.pm)) continue;
          const [from, to] = out.key.split('>').map(Number);
          this.nodes.get(to!)!.input(`${to}>${from}`, out.pm, this.now);
        }
      }
    }
  }

  /** Advances the clock to `until`, firing timers as each node asks. */
  run(until: number): void {
    while (this.now < until) {
      const next = Math.min(until, ...[...this.nodes.values()].map((n) => n.pollTimeout()));
      this.now = Math.max(this.now, next);
      for (const n of this.nodes.values()) if (n.pollTimeout() <= this.now) n.handleTimeout(this.now);
      this.pump();
      if (next === until) break;
    }
  }
}

test('two nodes handshake, sync routes both ways, and keep the link alive with pings', () => {
  const w = new World();
  w.add([1, node(1, 's3cret', 0x0a000001)], [2, node(2, 's3cret', 0x0a000002)]);
  w.link(1, 2);
  assert.deepEqual(w.nodes.get(1)!.routes.routes().map((r) => [r.peerId, r.cost, r.nextHop, r.hostname, r.ipv4]), [[2, 1, 2, 'n2', 0x0a000002]]);
  assert.deepEqual(w.nodes.get(2)!.routes.routes().map((r) => [r.peerId, r.cost]), [[1, 1]]);
  w.run(60_000);
  assert.ok(!w.events.get(1)!.some((e) => e.type === 'peer-down'), 'pings kept the link up for a minute');
});

test('our info is re-versioned every half hour, so receivers never age it out (they drop infos unchanged for 3660 s)', () => {
  const w = new World();
  w.add([1, node(1)], [2, node(2)]);
  w.link(1, 2);
  assert.equal(w.nodes.get(2)!.routes.route(1)!.info.version, 1);
  w.run(INFO_REFRESH_MS + 1000);
  assert.equal(w.nodes.get(1)!.routes.myInfo.version, 2);
  assert.equal(w.nodes.get(2)!.routes.route(1)!.info.version, 2, 'the neighbour took the new version');
});

test('a line 1 - 2 - 3: the ends learn each other through the middle (cost 2) and exchange Data via the relay', () => {
  const w = new World();
  w.add([1, node(1)], [2, node(2)], [3, node(3)]);
  w.link(1, 2);
  w.link(2, 3);
  w.run(6000); // the periodic sync spreads what each end learnt later
  const r13 = w.nodes.get(1)!.routes.route(3)!;
  assert.deepEqual([r13.cost, r13.nextHop], [2, 2]);
  assert.deepEqual([w.nodes.get(3)!.routes.route(1)!.cost, w.nodes.get(3)!.routes.route(1)!.nextHop], [2, 2]);
  const ip = randomBytes(84);
  let relayedFwd = 0;
  w.cut = (pm) => {
    const h = splitPm(pm)!.header;
    if (h.type === EtPacketType.Data) relayedFwd = Math.max(relayedFwd, h.forwardCounter);
    return false;
  };
  assert.equal(w.nodes.get(1)!.sendData(3, ip), true);
  w.pump();
  const got = w.events.get(3)!.find((e) => e.type === 'data');
  assert.ok(got && got.type === 'data');
  assert.equal(got.from, 1);
  assert.deepEqual(Buffer.from(got.payload), ip);
  assert.equal(relayedFwd, 2, 'the relay counted its hop');
  assert.equal(w.nodes.get(1)!.sendData(99, ip), false, 'no route, no send');
});

test('a wrong secret: both ends close, no route either way', () => {
  const w = new World();
  w.add([1, node(1, 'right')], [2, node(2, 'wrong')]);
  w.link(1, 2);
  const down = (id: number) => w.events.get(id)!.filter((e) => e.type === 'peer-down').map((e) => e.type === 'peer-down' && e.reason);
  assert.deepEqual(down(1), ['zero-digest'], 'the listener did not vouch for the dialler');
  assert.deepEqual(down(2), ['wrong-digest']);
  assert.equal(w.nodes.get(1)!.routes.routes().length, 0);
  assert.equal(w.nodes.get(2)!.routes.routes().length, 0);
});

test('a forged dialler with the right name and an all-zero digest is refused (EasyTier would accept it)', () => {
  const victim = node(1);
  victim.addConn('x', 'listener', 0);
  const forged = { ...ourHandshake({ peerId: 66, networkName: NET, digest: new Uint8Array(32) }) };
  victim.input('x', buildPm({ from: 66, to: 0, type: EtPacketType.HandShake, flags: 0, forwardCounter: 1 }, encodeHandshake(forged), etCipher('none', '')), 0);
  const reply = victim.pollTransmit()!;
  assert.equal(splitPm(reply.pm)!.header.type, EtPacketType.HandShake);
  assert.ok(Buffer.from(reply.pm.subarray(16)).includes(Buffer.alloc(32)), 'the reply does not vouch');
  const evs: EtNodeEvent[] = [];
  for (let e = victim.pollEvent(); e; e = victim.pollEvent()) evs.push(e);
  assert.deepEqual(evs.filter((e) => e.type === 'peer-down').map((e) => e.type === 'peer-down' && e.reason), ['zero-digest']);
  assert.ok(!evs.some((e) => e.type === 'peer-up'));
});

test('pongs withheld: the link closes after five lost pings, and the route goes', () => {
  const w = new World();
  w.add([1, node(1)], [2, node(2)]);
  w.link(1, 2);
  w.cut = (pm) => pm[8] === EtPacketType.Pong;
  w.run(15_000);
  const down = w.events.get(1)!.find((e) => e.type === 'peer-down');
  assert.ok(down && down.type === 'peer-down' && down.reason === 'ping-timeout');
  assert.equal(w.nodes.get(1)!.routes.routes().length, 0);
});

test('the peer-layer timers a test passes apply to this wire: EasyTier\'s by default, a fast dead-peer detection when shortened', () => {
  assert.deepEqual(etConnTimers(DEFAULT_TIMERS), ET_CONN_TIMERS);
  const fast = etConnTimers(FAST_PEER.timers);
  const w = new World();
  w.add([1, node(1, 's3cret', undefined, 0, fast)], [2, node(2, 's3cret', undefined, 0, fast)]);
  w.link(1, 2);
  w.cut = (pm) => pm[8] === EtPacketType.Pong;
  w.run(FAST_PEER.timers.deadMs + 2 * FAST_PEER.timers.keepaliveMs);
  const down = w.events.get(1)!.find((e) => e.type === 'peer-down');
  assert.ok(down && down.type === 'peer-down' && down.reason === 'ping-timeout', 'closed within the dead time and a ping');
});

test('no handshake within 5 s closes the link', () => {
  const n = node(1);
  n.addConn('x', 'listener', 0);
  n.handleTimeout(4999);
  assert.equal(n.pollEvent(), undefined);
  n.handleTimeout(5000);
  assert.deepEqual(n.pollEvent(), { type: 'peer-down', key: 'x', peerId: 0, reason: 'handshake-timeout' });
});
