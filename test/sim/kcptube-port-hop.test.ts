/**
 * A kcptube session on the virtual network, moved between server ports mid-transfer.
 *
 * Nodes: 0 = client, 1..PORTS = the server's listening ports (one SessionRouter behind all of them).
 * The client sends to one port at a time and hops to another every HOP_MS; the server answers
 * through the port the session's newest authenticated datagram came in on. Links are lossy and
 * reordering; a forged-datagram injector targets the server too. Proves: the session id, not the
 * 5-tuple, names the session (one session on the server throughout), the bytes arrive exactly both
 * ways, replies follow the client to each new port, and forged datagrams are only counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseKcptubeConfig, type KcptubeSide } from '../../daemon/kcptube/config.js';
import { TunnelCipher } from '../../daemon/kcptube/crypt.js';
import { SessionRouter, newTubeCounters } from '../../daemon/kcptube/router.js';
import { TubeSession } from '../../daemon/kcptube/session.js';
import { PROTO_TCP } from '../../daemon/kcptube/wire.js';
import { newSnmp } from '../../daemon/transport/session/snmp.js';
import { Rng, World, type SimDatagram, type SimEndpoint } from './world.js';

const PORTS = 4;
const HOP_MS = 1500;
const BYTES = 600_000;
const CHUNK = 5000;

function side(): KcptubeSide {
  const { config } = parseKcptubeConfig('sim', `mode=client
listen_port=1
destination_port=1-${PORTS}
destination_address=h
encryption_algorithm=chacha20
encryption_password=sim
kcp=regular4
fec=8:2
`);
  return config!.main;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Collects one direction's DATA records and checks nothing else arrives. */
class Sink {
  readonly buf = new Uint8Array(BYTES);
  n = 0;
  opened = false;
  take(s: TubeSession): void {
    for (let e = s.pollEvent(); e !== null; e = s.pollEvent()) {
      if (e.type === 'open') this.opened = true;
      else if (e.type === 'data') {
        this.buf.set(e.data, this.n);
        this.n += e.data.length;
      }
    }
  }
}

/** Writes `payload` on conn 1 while KCP's window has room. */
function feed(s: TubeSession, payload: Uint8Array, pos: number, now: number): number {
  while (pos < payload.length && s.canWrite()) {
    const end = Math.min(payload.length, pos + CHUNK);
    s.write(1, payload.subarray(pos, end));
    pos = end;
  }
  s.pump(now);
  return pos;
}

for (const seed of [1, 2, 3]) {
  test(`session survives destination-port changes (seed ${seed})`, () => {
    const rng = new Rng(seed);
    const world = new World({ seed });
    const cipher = TunnelCipher.fromPassword('chacha20', 'sim');
    const cfg = side();
    const up = rng.bytes(BYTES);
    const down = rng.bytes(BYTES);
    const atServer = new Sink();
    const atClient = new Sink();

    const client = new TubeSession({ sid: 0xdecaf, cipher, side: cfg, snmp: newSnmp(), now: 0 });
    client.sendHello({ version: 1, outboundBps: 0, inboundBps: 0 });
    client.open(1, PROTO_TCP);
    let upPos = 0;
    let downPos = 0;
    let port = 1;
    const portsUsed = new Set<number>([port]);

    const router = new SessionRouter<number>(cipher, newTubeCounters(), (sid, _path, now) =>
      new TubeSession({ sid, cipher, side: cfg, snmp: newSnmp(), now }));
    const repliesVia = new Set<number>();

    // The client side routes by session id too (no creation), dropping duplicates as replays.
    const clientRouter = new SessionRouter<null>(cipher, newTubeCounters(), null);
    clientRouter.sessions.set(0xdecaf, { session: client, path: null });
    const clientNode: SimEndpoint = {
      input(d, now) {
        if (clientRouter.input(d, null, now) === null) return;
        client.pump(now);
        atClient.take(client);
        upPos = feed(client, up, upPos, now);
      },
      pollTransmit(): SimDatagram | null {
        const d = client.pollTransmit();
        return d === null ? null : { data: d, to: port };
      },
      pollTimeout: () => client.pollTimeout(),
      handleTimeout(now) {
        client.handleTimeout(now);
        atClient.take(client);
        upPos = feed(client, up, upPos, now);
      },
    };
    const serverSession = (): TubeSession | undefined => router.sessions.get(0xdecaf)?.session;
    const serverPort = (p: number): SimEndpoint => ({
      input(d, now) {
        const r = router.input(d, p, now);
        if (r === null) return;
        r.session.pump(now);
        atServer.take(r.session);
        downPos = feed(r.session, down, downPos, now);
      },
      pollTransmit(): SimDatagram | null {
        const r = router.sessions.get(0xdecaf);
        if (r === undefined || r.path !== p) return null;
        const d = r.session.pollTransmit();
        if (d !== null) repliesVia.add(p);
        return d === null ? null : { data: d, to: 0 };
      },
      // Port 1 drives the timers of every session; the others only carry datagrams.
      pollTimeout: () => (p === 1 ? (serverSession()?.pollTimeout() ?? Infinity) : Infinity),
      handleTimeout(now) {
        const s = serverSession();
        if (s === undefined) return;
        s.handleTimeout(now);
        atServer.take(s);
        downPos = feed(s, down, downPos, now);
      },
    });
    assert.equal(world.addNode(clientNode), 0);
    for (let p = 1; p <= PORTS; p++) {
      assert.equal(world.addNode(serverPort(p)), p);
      world.linkBoth(0, p, { loss: 0.05, delayMs: 15, jitterMs: 5, duplicate: 0.01, rateBytesPerMs: 100, queueBytes: 60_000 });
    }
    const hop = (now: number): void => {
      port = 1 + ((port + rng.int(PORTS - 1)) % PORTS); // any port but the current one
      portsUsed.add(port);
      world.schedule(now + HOP_MS, hop);
    };
    world.schedule(HOP_MS, hop);
    // A forged datagram (random bytes) at one of the ports: counted, no session made.
    world.schedule(500, () => {
      const forged = rng.bytes(200);
      router.input(forged, 1, world.now);
    });
    world.schedule(0, (now) => {
      upPos = feed(client, up, upPos, now);
    });

    const r = world.run({ until: () => atServer.n === BYTES && atClient.n === BYTES, maxTime: 600_000 });
    assert.ok(r.done, `seed ${seed}: transfer stalled at ${atServer.n}/${atClient.n} bytes, t=${r.now}`);
    assert.equal(router.sessions.size, 1, 'one session on the server, whatever port it came in on');
    assert.ok(atServer.opened);
    assert.equal(sha(atServer.buf), sha(up));
    assert.equal(sha(atClient.buf), sha(down));
    assert.ok(portsUsed.size >= 3, `client used ${portsUsed.size} ports`);
    assert.ok(repliesVia.size >= 3, `server answered through ${[...repliesVia].join(',')}`);
    assert.equal(router.counters.forged + router.counters.short, 1);
    assert.ok(router.counters.replayed + clientRouter.counters.replayed > 0, 'the links duplicated datagrams: refused as replays');
  });
}
