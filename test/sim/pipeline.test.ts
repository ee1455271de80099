/**
 * The whole kcptun session pipeline (crypt + CRC ↔ FEC ↔ KCP ↔ snappy ↔ smux) between a client and a
 * server session in the deterministic simulator, over links with loss, reordering, duplication and
 * corruption. Several streams each way; every byte compared. Seeds cycle through all 15 ciphers (kcptun
 * 2021's 13 plus null and aes-128-gcm), FEC on/off, compression on/off and smux v1/v2. A failing seed
 * is printed as SIM_SEED=n (SIM_PIPELINE_SEEDS=n sets the count, default 600). `null` has no checksum
 * at all (as in kcp-go), so its links carry no corruption.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveKcptunKey } from '../../daemon/transport/crypt/kdf.js';
import { newDatagramCrypt } from '../../daemon/transport/crypt/datagram.js';
import { KcptunSession, type KcptunSessionConfig, type KcptunSessionEvent } from '../../daemon/transport/session/kcptun-session.js';
import { newSnmp, type KcptunSnmp } from '../../daemon/transport/session/snmp.js';
import { KCPTUN_CIPHERS } from '../../daemon/kcptun/config.js';
import { seedsFor, sweep } from './seeds.js';
import { KcptunSimNode, kcptunDefaultTuning } from './kcptun-node.js';
import { Rng, World, type LinkParams, type SimEndpoint } from './world.js';

const PASS = deriveKcptunKey('pipeline-sim');

interface Variant {
  crypt: string;
  fec: boolean;
  compress: boolean;
  smux: 1 | 2;
}

function variantOf(seed: number): Variant {
  return {
    crypt: KCPTUN_CIPHERS[seed % KCPTUN_CIPHERS.length]!,
    fec: seed % 2 === 0,
    compress: Math.floor(seed / 2) % 2 === 0,
    smux: Math.floor(seed / 4) % 2 === 0 ? 1 : 2,
  };
}

function sessionConfig(v: Variant, role: 'client' | 'server', conv: number): KcptunSessionConfig {
  return {
    conv,
    crypt: newDatagramCrypt(v.crypt, PASS),
    dataShards: v.fec ? 10 : 0,
    parityShards: v.fec ? 3 : 0,
    ...kcptunDefaultTuning(role),
    compress: v.compress,
    role,
    smux: { version: v.smux, maxStreamBuffer: 65536, maxReceiveBuffer: 262144, keepAliveInterval: 10_000, keepAliveTimeout: 30_000 },
  };
}

interface StreamState {
  out: Uint8Array;
  sent: number;
  finSent: boolean;
  received: Uint8Array[];
  receivedBytes: number;
  finReceived: boolean;
}

/** A session plus the application on top: it writes its data on every stream and collects the peer's. */
class Peer extends KcptunSimNode {
  readonly streams = new Map<number, StreamState>();
  closedError: string | null = null;

  constructor(cfg: KcptunSessionConfig, snmp: KcptunSnmp, private readonly makeData: () => Uint8Array, now: number) {
    super(cfg, snmp, now);
  }

  open(now: number): number {
    const sid = this.session.openStream();
    assert.ok(typeof sid === 'number');
    this.add(sid);
    this.step(now);
    return sid;
  }

  private add(sid: number): void {
    this.streams.set(sid, { out: this.makeData(), sent: 0, finSent: false, received: [], receivedBytes: 0, finReceived: false });
  }

  input(datagram: Uint8Array, now: number): void {
    this.session.input(datagram, now);
    this.step(now);
  }

  protected onEvent(e: KcptunSessionEvent): void {
    if (e.type === 'accept') this.add(e.sid);
    else if (e.type === 'fin') this.streams.get(e.sid)!.finReceived = true;
    else if (e.type === 'closed') this.closedError = e.error?.message ?? 'closed';
  }

  /** The application: write what the streams can take, read everything. */
  protected moveStreams(): boolean {
    const s = this.session;
    let any = false;
    for (const [sid, st] of this.streams) {
      if (st.sent < st.out.length) {
        const n = s.streamWrite(sid, st.out.subarray(st.sent));
        if (n > 0) any = true;
        st.sent += n;
      }
      if (st.sent === st.out.length && !st.finSent) {
        s.streamShutdown(sid);
        st.finSent = true;
        any = true;
      }
      for (let d = s.streamRead(sid); d !== null; d = s.streamRead(sid)) {
        st.received.push(d.slice());
        st.receivedBytes += d.length;
        any = true;
      }
    }
    return any;
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function runSeed(seed: number): string | null {
  const v = variantOf(seed);
  const world = new World({ seed });
  const rng = new Rng(seed ^ 0x5eed);
  const dataRng = rng.fork();
  const makeData = (): Uint8Array => {
    const n = dataRng.range(1, 48 * 1024);
    // Half the streams carry compressible bytes, so snappy's compressed chunks are exercised too.
    if (dataRng.chance(0.5)) return dataRng.bytes(n);
    const text = new TextEncoder().encode(`seed ${seed} line `.repeat(Math.ceil(n / 12)));
    return text.subarray(0, n);
  };
  const conv = rng.next();
  const client = new Peer(sessionConfig(v, 'client', conv), newSnmp(), makeData, world.now);
  const server = new Peer(sessionConfig(v, 'server', conv), newSnmp(), makeData, world.now);
  const a = world.addNode(client);
  const b = world.addNode(server);
  const link: LinkParams = {
    loss: rng.float() * 0.15,
    delayMs: rng.range(1, 40),
    jitterMs: rng.range(0, 20),
    duplicate: rng.float() * 0.05,
    corrupt: v.crypt === 'null' ? 0 : rng.float() * 0.05,
  };
  world.linkBoth(a, b, link);
  const streams = rng.range(1, 5);
  for (let i = 0; i < streams; i++) world.schedule(world.now + i * rng.range(0, 50), (now) => client.open(now));

  const complete = (p: Peer, q: Peer): boolean => {
    for (const [sid, st] of p.streams) {
      const peer = q.streams.get(sid);
      if (!peer || !st.finReceived || st.receivedBytes !== peer.out.length) return false;
    }
    return p.streams.size === streams;
  };
  const result = world.run({ until: () => complete(client, server) && complete(server, client), maxTime: 900_000, maxSteps: 2_000_000 });
  const label = `seed ${seed} (${JSON.stringify(v)}, link ${JSON.stringify(link)})`;
  if (!result.done) {
    return `${label}: did not finish by t=${result.now} (client ${client.closedError ?? 'open'}, server ${server.closedError ?? 'open'})`;
  }
  for (const [p, q, name] of [[client, server, 'server→client'], [server, client, 'client→server']] as const) {
    for (const [sid, st] of p.streams) {
      const sent = q.streams.get(sid)!.out;
      const got = concat(st.received, st.receivedBytes);
      if (Buffer.compare(Buffer.from(got), Buffer.from(sent)) !== 0) return `${label}: stream ${sid} ${name} bytes differ`;
    }
  }
  // Corrupted datagrams must have been caught by the CRC, not passed on.
  if (link.corrupt! > 0.01 && client.snmp.InCsumErrors + server.snmp.InCsumErrors === 0 && world.stats(a, b).corrupted + world.stats(b, a).corrupted > 5) {
    return `${label}: corrupted datagrams were not counted as InCsumErrors`;
  }
  for (const p of [client, server]) {
    totals.InCsumErrors += p.snmp.InCsumErrors;
    totals.FECRecovered += p.snmp.FECRecovered;
    totals.RetransSegs += p.snmp.RetransSegs;
    totals.RepeatSegs += p.snmp.RepeatSegs;
  }
  return null;
}

/** Sums over all seeds, to show the impairments were felt (PIPELINE_VERBOSE=1). */
const totals = { InCsumErrors: 0, FECRecovered: 0, RetransSegs: 0, RepeatSegs: 0 };

test('kcptun pipeline: byte-exact over loss, reordering, duplication and corruption, every cipher, FEC/compression/smux variants', (t) => {
  // 15 ciphers × 8 FEC/compression/smux variants: every pairing once per 120 seeds (15 and 8 are coprime).
  sweep(t, 'kcptun pipeline (crypt+FEC+KCP+snappy+smux)', seedsFor('SIM_PIPELINE_SEEDS', 600), runSeed);
  if (process.env.PIPELINE_VERBOSE) console.log(totals);
});

test('kcptun pipeline: FEC rebuilds lost datagrams (counted as FECRecovered)', () => {
  const v: Variant = { crypt: 'aes', fec: true, compress: false, smux: 1 };
  const world = new World({ seed: 7 });
  const dataRng = new Rng(7);
  const client = new Peer(sessionConfig(v, 'client', 1), newSnmp(), () => dataRng.bytes(200_000), world.now);
  const server = new Peer(sessionConfig(v, 'server', 1), newSnmp(), () => new Uint8Array(1), world.now);
  const a = world.addNode(client);
  const b = world.addNode(server);
  world.linkBoth(a, b, { loss: 0.1, delayMs: 10 });
  world.schedule(0, (now) => client.open(now));
  const r = world.run({
    until: () => [...server.streams.values()].some((s) => s.finReceived && s.receivedBytes === 200_000),
    maxTime: 600_000,
  });
  assert.ok(r.done);
  assert.ok(server.snmp.FECRecovered > 0, 'FEC recovered nothing at 10% loss');
  assert.ok(server.snmp.FECParityShards > 0);
});

test('kcptun pipeline: FEC-rebuilt duplicates do not inflate the peer RTT estimate (request/response under loss)', () => {
  // 64-byte request/response over 20 ms each way with 10% loss and FEC (10,3). Groups complete
  // slowly at this rate, so FEC often rebuilds a datagram KCP already got by retransmission; its
  // stale PUSH segments must not be ACKed again with their old timestamps, or the requester's
  // smoothed RTT (and so its RTO) grows far past the 40 ms path.
  const v: Variant = { crypt: 'aes', fec: true, compress: true, smux: 1 };
  const world = new World({ seed: 1 });
  let sid = -1;
  let waiting = false;
  let answers = 0;
  const client = new KcptunSession(sessionConfig(v, 'client', 9), newSnmp(), 0);
  const server = new KcptunSession(sessionConfig(v, 'server', 9), newSnmp(), 0);
  const endpoint = (s: KcptunSession, app: (now: number) => void): SimEndpoint => ({
    input(d, now) {
      s.input(d, now);
      app(now);
    },
    pollTransmit: () => s.pollTransmit(),
    pollTimeout: () => s.pollTimeout(),
    handleTimeout(now) {
      s.handleTimeout(now);
      app(now);
    },
  });
  let maxRto = 0;
  const clientApp = (now: number): void => {
    maxRto = Math.max(maxRto, client.link.kcp.rto);
    client.pump(now);
    for (let e = client.pollEvent(); e !== null; e = client.pollEvent()) {
      if (e.type !== 'readable') continue;
      for (let d = client.streamRead(e.sid); d !== null; d = client.streamRead(e.sid)) {
        answers++;
        waiting = false;
      }
    }
    client.pump(now);
  };
  const serverApp = (now: number): void => {
    server.pump(now);
    for (let e = server.pollEvent(); e !== null; e = server.pollEvent()) {
      if (e.type !== 'readable') continue;
      for (let d = server.streamRead(e.sid); d !== null; d = server.streamRead(e.sid)) server.streamWrite(e.sid, d.slice());
    }
    server.pump(now);
  };
  const a = world.addNode(endpoint(client, clientApp));
  const b = world.addNode(endpoint(server, serverApp));
  world.linkBoth(a, b, { loss: 0.1, delayMs: 20 });
  const ask = (now: number): void => {
    if (sid < 0) sid = client.openStream() as number;
    if (!waiting) {
      waiting = true;
      client.streamWrite(sid, new Uint8Array(64).fill(answers & 0xff));
      clientApp(now);
    }
    if (answers < 1000) world.schedule(now + 1, ask);
  };
  world.schedule(0, ask);
  const r = world.run({ until: () => answers >= 1000, maxTime: 3_600_000 });
  assert.ok(r.done);
  assert.ok(maxRto < 400, `client RTO reached ${maxRto} ms on a 40 ms path (it starts at 200)`);
});
