/**
 * tstier-kcptun's session pipeline (crypt + FEC + KCP + snappy + smux, kcptun's default settings) between
 * a client and a server on the simulator's virtual clock, over a link with loss and delay each way: bulk
 * goodput up (client → server) and down, one stream, after a warm-up. Deterministic and CPU-cheap, so a
 * sender-side change (loss recovery, pacing, ACK timing) can be judged over many seeds in seconds, before
 * the wall-clock bench/kcptun-compare.ts on the shared machine. kcptun itself does not run here: the
 * figures compare our variants (and seeds) with each other, not with kcptun.
 *
 * Passes as the driver makes them: a datagram is taken in at once, and one pass per ms of virtual time
 * (the inputs that arrived in that ms) pumps the layers and flushes the ACKs (daemon/kcptun/driver.ts).
 *
 *   node dist/bench/kcptun-sim.js [--loss 0.2] [--delay 20] [--seconds 6] [--warm 2] [--seeds 5] [--rate MBPS]
 */
import { newDatagramCrypt } from '../daemon/transport/crypt/datagram.js';
import { deriveKcptunKey } from '../daemon/transport/crypt/kdf.js';
import type { KcptunSessionConfig, KcptunSessionEvent } from '../daemon/transport/session/kcptun-session.js';
import { newSnmp } from '../daemon/transport/session/snmp.js';
import { KcptunSimNode, kcptunDefaultTuning } from '../test/sim/kcptun-node.js';
import { Rng, World } from '../test/sim/world.js';
import { benchArgs } from './lib/args.js';

const { opt } = benchArgs('kcptun-sim', 'node dist/bench/kcptun-sim.js [--loss 0.2] [--delay 20] [--seconds 6] [--warm 2] [--seeds 5] [--rate MBPS]',
  ['loss', 'delay', 'seconds', 'warm', 'seeds', 'rate']);
const LOSS = Number(opt('loss', '0.2'));
const DELAY = Number(opt('delay', '20'));
const SECONDS = Number(opt('seconds', '6'));
const WARM = Number(opt('warm', '2'));
const SEEDS = Number(opt('seeds', '5'));
/** A serialising link (MB/s) with a 200 ms queue; 0: no rate limit (the bench's relay on loopback). */
const RATE = Number(opt('rate', '0'));
const PASS = deriveKcptunKey('bench');

function config(role: 'client' | 'server'): KcptunSessionConfig {
  return {
    conv: 1,
    crypt: newDatagramCrypt('aes', PASS),
    dataShards: 10,
    parityShards: 3,
    ...kcptunDefaultTuning(role),
    compress: true,
    role,
    smux: { version: 1, maxStreamBuffer: 2 << 20, maxReceiveBuffer: 4 << 20, keepAliveInterval: 10_000, keepAliveTimeout: 30_000 },
  };
}

/** One end: a session, one bulk stream it writes (if `source`) and reads, one pass per ms with input. */
class End extends KcptunSimNode {
  sid = -1;
  received = 0;
  private passDue = false;

  constructor(role: 'client' | 'server', private readonly world: World, private readonly source: Uint8Array | null) {
    super(config(role), newSnmp(), world.now);
  }

  open(now: number): void {
    const sid = this.session.openStream();
    if (typeof sid !== 'number') throw sid;
    this.sid = sid;
    this.step(now);
  }

  input(datagram: Uint8Array, now: number): void {
    this.session.input(datagram, now);
    if (this.passDue) return;
    this.passDue = true;
    this.world.schedule(now, (t) => {
      this.passDue = false;
      this.step(t);
      this.session.flushAcks(t);
    });
  }

  protected onEvent(e: KcptunSessionEvent): void {
    if (e.type === 'accept') this.sid = e.sid;
  }

  protected moveStreams(): boolean {
    if (this.sid < 0) return false;
    const s = this.session;
    let any = false;
    if (this.source !== null) {
      while (s.streamWrite(this.sid, this.source) > 0) any = true;
    }
    for (let d = s.streamRead(this.sid); d !== null; d = s.streamRead(this.sid)) {
      this.received += d.length;
      any = true;
    }
    return any;
  }
}

/** Goodput in MB/s of one direction over [WARM, WARM + SECONDS] s of virtual time. */
function run(seed: number, up: boolean): { mbps: number; retransPerSeg: number; wire: number } {
  const world = new World({ seed });
  const data = new Rng(seed).bytes(1 << 16); // random: snappy cannot shrink it
  const client = new End('client', world, up ? data : null);
  const server = new End('server', world, up ? null : data);
  const c = world.addNode(client);
  const s = world.addNode(server);
  world.linkBoth(c, s, { loss: LOSS, delayMs: DELAY, ...(RATE > 0 ? { rateBytesPerMs: RATE * 1000, queueBytes: RATE * 200_000 } : {}) });
  world.schedule(0, (now) => client.open(now));
  const sink = up ? server : client;
  let atWarm = 0;
  world.schedule(WARM * 1000, () => (atWarm = sink.received));
  const end = (WARM + SECONDS) * 1000;
  world.run({ until: () => world.now >= end, maxTime: end, maxSteps: 50_000_000 });
  const sender = up ? client : server;
  return {
    mbps: (sink.received - atWarm) / SECONDS / 1e6,
    retransPerSeg: sender.snmp.RetransSegs / Math.max(1, sender.snmp.OutSegs),
    // Datagram bytes both ends sent per payload byte delivered (whole run).
    wire: (client.snmp.OutBytes + server.snmp.OutBytes) / Math.max(1, sink.received),
  };
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.floor((v.length - 1) / 2)]!;
}

for (const up of [true, false]) {
  const runs = Array.from({ length: SEEDS }, (_, i) => run(i + 1, up));
  const mbps = runs.map((r) => r.mbps);
  console.log(`${up ? 'up  ' : 'down'} MB/s median ${median(mbps).toFixed(2)} [${mbps.map((m) => m.toFixed(2)).join(' ')}] ` +
    `retrans/seg ${median(runs.map((r) => r.retransPerSeg)).toFixed(3)} wire B/payload B ${median(runs.map((r) => r.wire)).toFixed(3)}`);
}
