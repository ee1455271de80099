import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KernelNat, Verdict } from '../../../daemon/intercept/kernel/nat.js';
import { CLOSED_LINGER_MS, HELD_TIMEOUT_MS } from '../../../daemon/intercept/terminator.js';
import { buildTcpPacket } from '../../../daemon/packet/build.js';
import { parseIpv4Address } from '../../../daemon/packet/address.js';
import { internetChecksum, pseudoHeaderSum } from '../../../daemon/packet/checksum.js';
import { Ipv4View } from '../../../daemon/packet/ipv4.js';
import { TCP_ACK, TCP_RST, TCP_SYN, TcpView } from '../../../daemon/packet/tcp.js';
import { ipv4ToU32 } from '../../../daemon/peer/ipv4-prefix.js';

const MY = '10.144.144.1';
const FAKE = '10.144.144.0';
const DST = '10.144.144.3';

function pkt(src: string, sport: number, dst: string, dport: number, flags: number, seq = 1000, payload = new Uint8Array(0)): Uint8Array {
  return buildTcpPacket(
    { src: parseIpv4Address(src)!, dst: parseIpv4Address(dst)! },
    { srcPort: sport, dstPort: dport, seq, ack: 0, flags, window: 65535, urgent: 0, options: {}, payload },
  );
}

function parse(p: Uint8Array): { src: string; dst: string; sport: number; dport: number; flags: number; ack: number; ok: boolean } {
  const ip = new Ipv4View();
  const tcp = new TcpView();
  assert.equal(ip.wrap(p), null);
  assert.equal(tcp.wrap(p, ip.payloadStart, ip.end), null);
  const addr = (at: number) => Array.from(p.subarray(at, at + 4)).join('.');
  return {
    src: addr(ip.srcOffset), dst: addr(ip.dstOffset), sport: tcp.srcPort, dport: tcp.dstPort, flags: tcp.flags, ack: tcp.ack,
    ok: ip.verifyChecksum() && tcp.verifyChecksum(ip.start),
  };
}

function nat(listeners = [40001, 40002]): KernelNat {
  return new KernelNat(ipv4ToU32(MY)!, ipv4ToU32(FAKE)!, listeners);
}

test('a held SYN is released rewritten to the listener; both directions are then rewritten with valid checksums', () => {
  const n = nat();
  const syn = pkt(MY, 5555, DST, 80, TCP_SYN);
  assert.equal(n.classify(syn), Verdict.NewSyn);
  const flow = n.hold(syn, 'owner')!;
  assert.equal(flow.listenerPort, 40001);
  // Retransmitted SYNs while held are absorbed.
  assert.equal(n.classify(pkt(MY, 5555, DST, 80, TCP_SYN, 1000)), Verdict.Absorb);
  const injected = parse(n.release(flow)!);
  assert.deepEqual([injected.src, injected.sport, injected.dst, injected.dport, injected.ok], [FAKE, 5555, MY, 40001, true]);
  assert.equal(n.accepted(40001, 5555), flow);

  // The listener's SYN-ACK goes back to the app as if from the destination.
  const synAck = pkt(MY, 40001, FAKE, 5555, TCP_SYN | TCP_ACK);
  assert.equal(n.classify(synAck), Verdict.ToTun);
  const back = parse(synAck);
  assert.deepEqual([back.src, back.sport, back.dst, back.dport, back.ok], [DST, 80, MY, 5555, true]);

  // The app's next packets go to the listener.
  const data = pkt(MY, 5555, DST, 80, TCP_ACK, 1001, new Uint8Array(100).fill(7));
  assert.equal(n.classify(data), Verdict.ToTun);
  const fwd = parse(data);
  assert.deepEqual([fwd.src, fwd.dst, fwd.dport, fwd.ok], [FAKE, MY, 40001, true]);
});

test('the same app port to two destinations uses two listener ports; a third collision is refused', () => {
  const n = nat();
  const a = n.hold(pkt(MY, 6000, DST, 80, TCP_SYN), 1)!;
  const b = n.hold(pkt(MY, 6000, '10.144.144.4', 80, TCP_SYN), 2)!;
  assert.notEqual(a.listenerPort, b.listenerPort);
  assert.equal(n.hold(pkt(MY, 6000, '10.144.144.5', 80, TCP_SYN), 3), null);
});

test('refuse builds a RST|ACK from the destination acknowledging the SYN, and forgets the flow', () => {
  const n = nat();
  const flow = n.hold(pkt(MY, 7000, DST, 22, TCP_SYN, 0xfffffff0), null)!;
  const rst = parse(n.refuse(flow)!);
  assert.deepEqual([rst.src, rst.sport, rst.dst, rst.dport, rst.flags, rst.ack, rst.ok], [DST, 22, MY, 7000, TCP_RST | TCP_ACK, 0xfffffff1, true]);
  assert.equal(n.size, 0);
  assert.equal(n.classify(pkt(MY, 7000, DST, 22, TCP_SYN)), Verdict.NewSyn);
});

test('closed flows linger, held SYNs expire, and other traffic passes untouched', () => {
  const n = nat();
  const active = n.hold(pkt(MY, 8000, DST, 80, TCP_SYN), null)!;
  n.release(active);
  const held = n.hold(pkt(MY, 8001, DST, 80, TCP_SYN), null)!;
  n.closed(active, 1000);
  const heldAt = (): number => 5_000;
  assert.deepEqual(n.sweep(5_000 + HELD_TIMEOUT_MS - 1, heldAt), []);
  assert.deepEqual(n.sweep(5_000 + HELD_TIMEOUT_MS, heldAt), [held]);
  assert.deepEqual(n.sweep(1_000 + CLOSED_LINGER_MS - 1, heldAt), []);
  assert.deepEqual(n.sweep(1_000 + CLOSED_LINGER_MS, heldAt), [active]);
  assert.equal(n.size, 0);
  for (const other of [pkt('10.0.0.9', 1, DST, 80, TCP_SYN), pkt(MY, 1, DST, 80, TCP_ACK), new Uint8Array(7), new Uint8Array(60).fill(0x45)]) {
    assert.equal(n.classify(other), Verdict.Pass);
  }
});

test('a held SYN is a copy: the TUN batch it came from may be overwritten before release', () => {
  const n = nat();
  const batch = Buffer.from(pkt(MY, 9000, DST, 80, TCP_SYN)); // a Buffer, like the TUN's read batch
  assert.equal(n.classify(batch), Verdict.NewSyn);
  const flow = n.hold(batch, null)!;
  const retry = Buffer.from(pkt(MY, 9000, DST, 80, TCP_SYN, 1000));
  assert.equal(n.classify(retry), Verdict.Absorb);
  batch.fill(0xee);
  retry.fill(0xee);
  const injected = parse(n.release(flow)!);
  assert.deepEqual([injected.src, injected.sport, injected.dst, injected.dport, injected.ok], [FAKE, 9000, MY, 40001, true]);
});

/** A TUN super-packet's partial checksum (offloads): the pseudo-header sum only, not complemented. */
function partial(p: Uint8Array): Uint8Array {
  const ip = new Ipv4View();
  assert.equal(ip.wrap(p), null);
  const field = ip.payloadStart + 16;
  const len = ip.end - ip.payloadStart;
  const pseudo = pseudoHeaderSum(p, ip.start, 6, len);
  p[field] = pseudo >> 8;
  p[field + 1] = pseudo & 0xff;
  return p;
}

/** Finishes a partial TCP checksum as the kernel would (the sum from the TCP header on, complemented). */
function finish(p: Uint8Array): Uint8Array {
  const ip = new Ipv4View();
  assert.equal(ip.wrap(p), null);
  const c = internetChecksum(p, ip.payloadStart, ip.end);
  p[ip.payloadStart + 16] = c >> 8;
  p[ip.payloadStart + 17] = c & 0xff;
  return p;
}

test('super-packets (partial checksum): a tracked flow\'s are rewritten both ways and verify once finished; others pass', () => {
  const n = nat();
  const syn = pkt(MY, 6666, DST, 80, TCP_SYN);
  assert.equal(n.classify(syn), Verdict.NewSyn);
  const flow = n.hold(syn, 'owner')!;
  const early = partial(pkt(MY, 6666, DST, 80, TCP_ACK, 1001, new Uint8Array(20_000).fill(3)));
  assert.equal(n.classify(early, true), Verdict.Pass, 'held: cut, so that its segments are absorbed');
  assert.equal(n.classify(partial(pkt(MY, 7777, DST, 80, TCP_ACK)), true), Verdict.Pass, 'untracked: never NewSyn');
  n.release(flow);

  const up = partial(pkt(MY, 6666, DST, 80, TCP_ACK, 1001, new Uint8Array(30_000).fill(9)));
  assert.equal(n.classify(up, true), Verdict.ToTun);
  const fwd = parse(finish(up));
  assert.deepEqual([fwd.src, fwd.sport, fwd.dst, fwd.dport, fwd.ok], [FAKE, 6666, MY, 40001, true]);

  const down = partial(pkt(MY, 40001, FAKE, 6666, TCP_ACK, 5000, new Uint8Array(40_000).fill(5)));
  assert.equal(n.classify(down, true), Verdict.ToTun);
  const back = parse(finish(down));
  assert.deepEqual([back.src, back.sport, back.dst, back.dport, back.ok], [DST, 80, MY, 6666, true]);
});
