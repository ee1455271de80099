/**
 * A packet-level impairment relay: netem for machines without it, for every IP protocol (relay.ts
 * relays UDP datagrams only, so it cannot impair fake TCP or anything else that is not UDP).
 *
 * Two TUN devices, one per side: the relay opens both in its own namespace, then moves the second into
 * the other namespace (a TUN's descriptor keeps working across the move) and addresses each end, so
 * the two namespaces are joined by a point-to-point link that passes through this process. Every IP
 * packet read on one side is written to the other after `delay` ms, or dropped with probability `loss`
 * (seeded), each direction on its own. A constant delay keeps packets in order, as a link would.
 *
 *   ip netns exec A node dist/bench/packet-relay.js --peer-ns B --a 10.131.0.1/24 --b 10.131.0.2/24 \
 *        [--loss 0.05] [--delay 20] [--seed 7]
 * Prints "ready" once both ends are up; runs until SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { TunDevice } from '../daemon/tun/tun-device.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : dflt;
};
const peerNs = opt('peer-ns', '');
const addrA = opt('a', '');
const addrB = opt('b', '');
const loss = Number(opt('loss', '0'));
const delay = Number(opt('delay', '0'));
let seed = Number(opt('seed', '7')) >>> 0 || 1;
if (!peerNs || !addrA || !addrB) {
  process.stderr.write('usage: packet-relay.js --peer-ns NS --a CIDR --b CIDR [--loss P] [--delay MS] [--seed N]\n');
  process.exit(2);
}
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
  dropped = 0;
  passed = 0;

  constructor(private readonly out: TunDevice) {}

  push(pkt: Buffer): void {
    if (loss > 0 && random() < loss) {
      this.dropped++;
      return;
    }
    this.passed++;
    if (delay <= 0) {
      this.out.write(pkt);
      return;
    }
    this.queue.push({ due: performance.now() + delay, pkt: Buffer.from(pkt) });
    if (!this.timer) this.timer = setTimeout(() => this.drain(), delay);
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
  process.stderr.write(`packet-relay: a->b passed ${toB.passed} dropped ${toB.dropped}; b->a passed ${toA.passed} dropped ${toA.dropped}\n`);
  process.exit(0);
});
console.log('ready');
