import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKcptubeConfig, type KcptubeSide } from '../../../daemon/kcptube/config.js';
import { TunnelCipher, type KcptubeCipher } from '../../../daemon/kcptube/crypt.js';
import { ENDED_IDS_KEPT, SessionRouter, newTubeCounters } from '../../../daemon/kcptube/router.js';
import { TubeSession, windowFromBandwidth, type TubeEvent } from '../../../daemon/kcptube/session.js';
import { TUNNEL_HEADER_SIZE, T_KCP, T_PING, writeTunnelHeader } from '../../../daemon/kcptube/wire.js';
import { newSnmp } from '../../../daemon/transport/session/snmp.js';
import { Rng } from '../../sim/world.js';

function side(extra = ''): KcptubeSide {
  const { config } = parseKcptubeConfig('t', `mode=client\nlisten_port=1\ndestination_port=2\ndestination_address=h\n${extra}`);
  return config!.main;
}

function drain(s: TubeSession): TubeEvent[] {
  const out: TubeEvent[] = [];
  for (let e = s.pollEvent(); e !== null; e = s.pollEvent()) out.push(e);
  return out;
}

function datagrams(s: TubeSession): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let d = s.pollTransmit(); d !== null; d = s.pollTransmit()) out.push(d.slice());
  return out;
}

test("kcptube's bandwidth window rule: bytes/s ÷ mtu × srtt × 1.2, at least 32", () => {
  // 100 Mbit/s, mtu 1400, 50 ms: 12.5e6 / 1400 × 0.05 × 1.2 = 535.7
  assert.equal(windowFromBandwidth(100e6, 1400, 50), 535);
  assert.equal(windowFromBandwidth(1e6, 1400, 10), 32);
  assert.equal(windowFromBandwidth(0, 1400, 50), null);
  assert.equal(windowFromBandwidth(1e6, 1400, 0), null);
});

test('a few seconds in, the send window comes from the bandwidth and the measured RTT', () => {
  const cipher = TunnelCipher.fromPassword('none', '');
  const cfg = side('outbound_bandwidth=100M\ninbound_bandwidth=100M\nkcp_sndwnd=64\nkcp_rcvwnd=64\n');
  const a = new TubeSession({ sid: 7, cipher, side: cfg, snmp: newSnmp(), now: 0 });
  const router = new SessionRouter<number>(cipher, newTubeCounters(), (sid, _p, now) =>
    new TubeSession({ sid, cipher, side: cfg, snmp: newSnmp(), now }));
  a.sendHello({ version: 1, outboundBps: cfg.outboundBandwidth, inboundBps: cfg.inboundBandwidth });
  // 40 ms each way, ping-pong until well past the 5-second mark.
  let now = 0;
  for (; now < 7000; now += 40) {
    a.write(1, new Uint8Array(500));
    a.handleTimeout(now);
    for (const d of datagrams(a)) router.input(d, 0, now + 40);
    const b = router.sessions.get(7)!.session;
    b.handleTimeout(now + 40);
    drain(b);
    for (const d of datagrams(b)) {
      const off = cipher.open(d, d.length);
      a.inputKcp(d, off + TUNNEL_HEADER_SIZE, now + 80);
    }
    a.pump(now + 80);
    drain(a);
  }
  const kcp = a.link.kcp;
  assert.ok(kcp.srtt > 0);
  assert.equal(kcp.sendWindow, windowFromBandwidth(100 * 1024 * 1024, kcp.mtu, kcp.srtt));
  assert.notEqual(kcp.sendWindow, 64, 'the configured window was replaced');
});

test('router: garbage, truncated, bit-flipped and wrong-key datagrams are counted, never thrown', () => {
  const rng = new Rng(21);
  for (const name of ['none', 'aes-gcm', 'xchacha20'] as KcptubeCipher[]) {
    const cipher = TunnelCipher.fromPassword(name, 'k');
    const wrong = TunnelCipher.fromPassword(name, 'not-k');
    const counters = newTubeCounters();
    let created = 0;
    const router = new SessionRouter<number>(cipher, counters, (sid, _p, now) => {
      created++;
      return new TubeSession({ sid, cipher, side: side(), snmp: newSnmp(), now });
    });
    // A real session's datagrams, to mutate.
    const real = new TubeSession({ sid: 99, cipher, side: side(), snmp: newSnmp(), now: 0 });
    real.sendHello({ version: 1, outboundBps: 0, inboundBps: 0 });
    real.write(1, rng.bytes(3000));
    real.pump(0);
    const good = datagrams(real);
    assert.ok(good.length >= 2);
    let inputs = 0;
    for (let i = 0; i < 2000; i++) {
      const base = good[i % good.length]!;
      let d: Uint8Array;
      switch (i % 4) {
        case 0: d = rng.bytes(rng.int(1500)); break;
        case 1: d = base.slice(0, rng.int(base.length)); break;
        case 2: d = base.slice(); d[rng.int(d.length)]! ^= 1 << rng.int(8); break;
        default: {
          // Correctly sealed under another key, or under ours with a garbage body and random type.
          d = new Uint8Array(cipher.headerSize + TUNNEL_HEADER_SIZE + rng.int(200));
          d.set(rng.bytes(d.length));
          writeTunnelHeader(d, cipher.headerSize, rng.int(4), rng.pick([T_KCP, T_PING, 9, 0]), rng.int(1000));
          (rng.chance(0.5) ? wrong : cipher).seal(d, d.length);
        }
      }
      inputs++;
      const r = router.input(d, 0, i);
      if (r !== null) {
        r.session.handleTimeout(i);
        drain(r.session);
        datagrams(r.session);
      }
    }
    const counted = counters.replayed + counters.short + counters.forged + counters.badType + counters.unknownSession;
    assert.ok(counted > 0 && counted <= inputs, name);
    if (name !== 'none') assert.ok(counters.forged > 400, `${name}: forged ${counters.forged}`);
    assert.ok(created <= 5, `${name}: only authentic KCP datagrams may create sessions (${created})`);
  }
});

test('a session that receives an unknown record kind ends with a protocol error; PING is answered', () => {
  const cipher = TunnelCipher.fromPassword('chacha20', 'k');
  const a = new TubeSession({ sid: 5, cipher, side: side(), snmp: newSnmp(), now: 0 });
  const b = new TubeSession({ sid: 5, cipher, side: side(), snmp: newSnmp(), now: 0 });
  a.link.write(Uint8Array.of(200, 0, 0, 0, 0, 0, 0)); // kind 200, under the record layer
  a.link.flush(0);
  for (const d of datagrams(a)) {
    const off = cipher.open(d, d.length);
    b.inputKcp(d, off + TUNNEL_HEADER_SIZE, 10);
  }
  b.pump(10);
  const ev = drain(b);
  assert.deepEqual(ev.at(-1), { type: 'closed', reason: 'protocol error: unknown record kind' });
  const c = new TubeSession({ sid: 6, cipher, side: side(), snmp: newSnmp(), now: 0 });
  c.inputControl(T_PING, Uint8Array.of(1, 2, 3, 4), 0);
  const out = datagrams(c);
  assert.equal(out.length, 1);
  const off = cipher.open(out[0]!, out[0]!.length);
  assert.equal(out[0]![off + 4], 3 /* PONG */);
  assert.deepEqual([...out[0]!.subarray(off + TUNNEL_HEADER_SIZE)], [1, 2, 3, 4]);
});

test('blast (the default) sends a write at once; blast=no leaves it for the next interval tick', () => {
  const cipher = TunnelCipher.fromPassword('none', '');
  for (const blast of [true, false]) {
    const s = new TubeSession({ sid: 1, cipher, side: side(`kcp=regular4\nblast=${blast ? 1 : 0}\n`), snmp: newSnmp(), now: 0 });
    s.handleTimeout(0); // arms the 15 ms interval timer
    datagrams(s);
    s.write(1, new Uint8Array(100));
    s.pump(1);
    assert.equal(datagrams(s).length, blast ? 1 : 0, `blast=${blast}`);
    s.handleTimeout(s.pollTimeout());
    if (!blast) assert.equal(datagrams(s).length, 1, 'sent at the tick');
  }
});

test('keep_alive: PINGs every N s; a silent peer closes the session after 30 s', () => {
  const cipher = TunnelCipher.fromPassword('none', '');
  const s = new TubeSession({ sid: 3, cipher, side: side('keep_alive=2\n'), snmp: newSnmp(), now: 0 });
  let pings = 0;
  let closedAt = -1;
  for (let now = 0; now <= 40_000 && closedAt < 0; now = Math.max(now + 1, Math.min(s.pollTimeout(), now + 1000))) {
    s.handleTimeout(now);
    for (const d of datagrams(s)) if (d[cipher.headerSize + 4] === T_PING) pings++;
    for (const e of drain(s)) if (e.type === 'closed') closedAt = now;
  }
  assert.ok(closedAt > 30_000 && closedAt <= 31_000, `closed at ${closedAt}`);
  assert.ok(pings >= 14 && pings <= 16, `${pings} pings`);
});

test('a replayed authentic datagram is counted and cannot move the session', () => {
  const cipher = TunnelCipher.fromPassword('aes-gcm', 'k');
  const counters = newTubeCounters();
  const router = new SessionRouter<string>(cipher, counters, (sid, _p, now) =>
    new TubeSession({ sid, cipher, side: side(), snmp: newSnmp(), now }));
  const a = new TubeSession({ sid: 8, cipher, side: side(), snmp: newSnmp(), now: 0 });
  a.sendHello({ version: 1, outboundBps: 0, inboundBps: 0 });
  a.pump(0);
  const [first] = datagrams(a);
  assert.ok(router.input(first!.slice(), 'real peer', 1) !== null);
  assert.equal(router.input(first!.slice(), 'attacker', 2), null);
  assert.equal(counters.replayed, 1);
  assert.equal(router.sessions.get(8)!.path, 'real peer');
  // Two more datagrams; the later one arrives first (from the new address), then the older one
  // (a straggler from the old address): delivered, but the path stays with the newest.
  a.write(1, new Uint8Array(10));
  a.pump(3);
  a.write(1, new Uint8Array(10));
  a.pump(4);
  const [older, newer] = datagrams(a);
  assert.ok(router.input(newer!, 'new address', 5) !== null);
  assert.ok(router.input(older!, 'old address', 6) !== null, 'a late datagram is still delivered');
  assert.equal(router.sessions.get(8)!.path, 'new address');
});

test('an ended session stays dead; only a first datagram creates one; the memory of ended ids is bounded', () => {
  const cipher = TunnelCipher.fromPassword('chacha20', 'k');
  const counters = newTubeCounters();
  let created = 0;
  const router = new SessionRouter<string>(cipher, counters, (sid, _p, now) => {
    created++;
    return new TubeSession({ sid, cipher, side: side(), snmp: newSnmp(), now });
  });
  const a = new TubeSession({ sid: 9, cipher, side: side(), snmp: newSnmp(), now: 0 });
  a.sendHello({ version: 1, outboundBps: 0, inboundBps: 0 });
  a.pump(0);
  a.write(1, new Uint8Array(3000)); // more segments, more datagrams
  a.pump(1);
  const [first, ...later] = datagrams(a);
  assert.ok(later.length > 0);
  // A later datagram cannot open the session (KCP would wait for segment 0 forever, acking a stranger).
  assert.equal(router.input(later[0]!.slice(), 'x', 1), null);
  assert.equal(counters.unknownSession, 1);
  assert.ok(router.input(first!.slice(), 'peer', 2) !== null);
  assert.equal(created, 1);
  router.delete(9);
  for (const d of [first!, ...later]) assert.equal(router.input(d.slice(), 'stranger', 3), null);
  assert.equal(created, 1, 'the replays created nothing');
  assert.equal(counters.endedSession, 1 + later.length);
  // Bounded: the oldest ended id is forgotten first.
  for (let sid = 100; sid < 100 + ENDED_IDS_KEPT; sid++) {
    router.sessions.set(sid, { session: a, path: 'x' });
    router.delete(sid);
  }
  assert.equal(router.ended.size, ENDED_IDS_KEPT);
  assert.equal(router.ended.has(9), false);
  assert.equal(router.ended.has(100), true);
});
