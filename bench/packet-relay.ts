/**
 * A packet-level impairment relay: netem for machines without it, for every IP protocol (relay.ts
 * relays UDP datagrams only, so it cannot impair fake TCP or anything else that is not UDP).
 *
 * Two TUN devices, one per side: the relay opens both in its own namespace, then moves the second into
 * the other namespace (a TUN's descriptor keeps working across the move) and addresses each end, so
 * the two namespaces are joined by a point-to-point link that passes through this process. Every IP
 * packet read on one side is written to the other after `delay` ms, or dropped with probability `loss`
 * (seeded), each direction on its own. A constant delay keeps packets in order, as a link would.
 * With --rate, each direction is also a bottleneck of that many Mbit/s: a packet that survives the
 * loss waits its turn to be serialised behind the ones before it (a drop-tail FIFO holding at most
 * --queue-ms of transmission time; a packet that would wait longer is dropped, as an overflowing
 * router queue drops it), then travels for `delay` ms. So a sender that overruns the rate sees the
 * queueing delay grow and then tail drops, on top of the random loss.
 *
 *   ip netns exec A node dist/bench/packet-relay.js --peer-ns B --a 10.131.0.1/24 --b 10.131.0.2/24 \
 *        [--loss 0.05] [--delay 20] [--seed 7] [--rate 100 [--queue-ms 50]]
 * Prints "ready" once both ends are up; runs until SIGTERM, then prints per-direction counts.
 */
import { execFileSync } from 'node:child_process';
import { TunDevice } from '../daemon/tun/tun-device.js';
import { benchArgs } from './lib/args.js';
import { runAheadOfPair } from './lib/link-priority.js';

const { opt } = benchArgs('packet-relay', 'packet-relay.js --peer-ns NS --a CIDR --b CIDR [--loss P] [--delay MS] [--seed N] [--rate MBIT [--queue-ms MS]]',
  ['peer-ns', 'a', 'b', 'loss', 'delay', 'seed', 'rate', 'queue-ms']);
const peerNs = opt('peer-ns', '');
const addrA = opt('a', '');
const addrB = opt('b', '');
const loss = Number(opt('loss', '0'));
const delay = Number(opt('delay', '0'));
let seed = Number(opt('seed', '7')) >>> 0 || 1;
/** Bottleneck rate in Mbit/s each way; 0 = unlimited. */
const rateMbit = Number(opt('rate', '0'));
const queueMs = Number(opt('queue-ms', '50'));
if (!peerNs || !addrA || !addrB) {
  process.stderr.write('usage: packet-relay.js --peer-ns NS --a CIDR --b CIDR [--loss P] [--delay MS] [--seed N] [--rate MBIT [--queue-ms MS]]\n');
  process.exit(2);
}
for (const [flag, v] of [['loss', loss], ['delay', delay], ['rate', rateMbit], ['queue-ms', queueMs]] as const) {
  if (!Number.isFinite(v) || v < 0 || (flag === 'loss' && v >= 1)) {
    process.stderr.write(`packet-relay: --${flag} ${opt(flag, '')} is not a valid value\n`);
    process.exit(2);
  }
}
runAheadOfPair('packet-relay');
/** Milliseconds one byte occupies the bottleneck. */
const msPerByte = rateMbit > 0 ? 8 / (rateMbit * 1e3) : 0;
const MTU = 1500;

/** xorshift32 in [0, 1): seeded, so runs are repeatable. */
function random(): number {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 2 ** 32;
}

/** One direction: a FIFO of packets due at their arrival time + delay, written out by one timer. */
class DelayLine {
  private readonly queue: { due: number; pkt: Buffer }[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the bottleneck finishes serialising the last packet accepted (rate-capped only). */
  private busyUntil = 0;
  dropped = 0;
  overflowed = 0;
  passed = 0;

  constructor(private readonly out: TunDevice) {}

  push(pkt: Buffer): void {
    if (loss > 0 && random() < loss) {
      this.dropped++;
      return;
    }
    const now = performance.now();
    let sent = now;
    if (msPerByte > 0) {
      const start = Math.max(now, this.busyUntil);
      if (start - now > queueMs) {
        this.overflowed++;
        return;
      }
      sent = this.busyUntil = start + pkt.length * msPerByte;
    }
    this.passed++;
    if (sent + delay <= now) {
      this.out.write(pkt);
      return;
    }
    // Due times never decrease (constant delay, FIFO bottleneck), so the queue stays in order.
    this.queue.push({ due: sent + delay, pkt: Buffer.from(pkt) });
    if (!this.timer) this.timer = setTimeout(() => this.drain(), sent + delay - now);
  }

  private drain(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.head < this.queue.length && this.queue[this.head]!.due <= now + 0.5) this.out.write(this.queue[this.head++]!.pkt);
    if (this.head > 4096) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.head < this.queue.length) this.timer = setTimeout(() => this.drain(), Math.max(0, this.queue[this.head]!.due - now));
  }
}

const a = TunDevice.open({ name: 'prA%d', mtu: MTU, ipv4: addrA });
const b = TunDevice.open({ name: 'prB%d', mtu: MTU });
execFileSync('ip', ['link', 'set', b.name, 'netns', peerNs]);
execFileSync('ip', ['-n', peerNs, 'addr', 'add', addrB, 'dev', b.name]);
execFileSync('ip', ['-n', peerNs, 'link', 'set', b.name, 'mtu', String(MTU), 'up']);
const toB = new DelayLine(b);
const toA = new DelayLine(a);
a.onPackets((batch, offsets, lengths, count) => {
  for (let i = 0; i < count; i++) toB.push(batch.subarray(offsets[i]!, offsets[i]! + lengths[i]!));
});
b.onPackets((batch, offsets, lengths, count) => {
  for (let i = 0; i < count; i++) toA.push(batch.subarray(offsets[i]!, offsets[i]! + lengths[i]!));
});
process.on('SIGTERM', () => {
  const counts = (d: DelayLine): string => `passed ${d.passed} dropped ${d.dropped} overflowed ${d.overflowed}`;
  process.stderr.write(`packet-relay: a->b ${counts(toB)}; b->a ${counts(toA)}\n`);
  process.exit(0);
});
console.log('ready');
