/**
 * The TUN addon against the real kernel, each case in a fresh network namespace ("tt4-tun-*").
 * The device is opened by a child Node process running under `ip netns exec`
 * (fixtures/tun-fixture.ts), so it is created inside that namespace.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { TunDevice } from '../../daemon/tun/tun-device.js';
import { type Namespace, Netns, type NsProcess, unavailableReason } from './lib/netns.js';

const FIXTURE = new URL('./fixtures/tun-fixture.js', import.meta.url);
const skip = unavailableReason() ?? false;

async function setup(t: { after(fn: () => unknown): void }): Promise<Namespace> {
  const net = await Netns.create('tt4-tun', t);
  return net.ns('a');
}

function startFixture(ns: Namespace, mode: string, opts: object): NsProcess {
  return ns.node(FIXTURE, [mode, JSON.stringify(opts)]);
}

interface CloseEvent {
  stats: { rxPackets: number; txPackets: number; writeErrors: number; rxDropsTruncated: number };
}

test('ping through a JS echo responder on the TUN, IPv4 and IPv6; close is clean', { skip }, async (t) => {
  const ns = await setup(t);
  // Without offloads: with them a receive slot takes any IP packet, so the oversized-packet drop
  // checked below cannot happen (offloads are tested in tun-offload.test.ts).
  const p = startFixture(ns, 'echo', { name: 'tt4tun0', mtu: 1400, ipv4: '10.201.0.1/24', ipv6: 'fd42:201::1/64', offload: false });
  const ready = await p.waitForEvent<{ name: string; mtu: number }>('ready');
  assert.equal(ready.name, 'tt4tun0');

  // The device is configured as asked, by ioctls in the addon.
  const link = JSON.parse((await ns.exec(['ip', '-j', 'addr', 'show', 'dev', 'tt4tun0'])).stdout)[0];
  assert.equal(link.mtu, 1400);
  assert.equal(link.txqlen, 32768); // 4096 overflowed under the 1,000-flow proxy load (kcp-load.test.ts)
  assert.ok(link.flags.includes('UP'));
  const addrs = link.addr_info.map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`);
  assert.ok(addrs.includes('10.201.0.1/24') && addrs.includes('fd42:201::1/64'), addrs.join(' '));

  // ping exits 0 only if every request got its reply: our builder's packets are accepted by the kernel.
  await ns.exec(['ping', '-c', '3', '-i', '0.2', '-W', '5', '10.201.0.2']);
  await ns.exec(['ping', '-6', '-c', '3', '-i', '0.2', '-W', '5', 'fd42:201::2']);
  for (const family of [4, 6]) {
    for (const seq of [1, 2, 3]) {
      const e = await p.waitForEvent<{ family: number; seq: number; checksumOk: boolean; written: boolean }>('echo');
      assert.deepEqual(e, { event: 'echo', family, seq, checksumOk: true, written: true });
    }
  }

  // A packet larger than the MTU the device was opened with (the MTU was raised behind our back)
  // does not fit a receive slot: it is counted and dropped. The TUN queue is FIFO, so once the
  // next ping is answered the big packet has been read.
  await ns.exec(['ip', 'link', 'set', 'tt4tun0', 'mtu', '4000']);
  const sendBig = "const s = require('dgram').createSocket('udp4'); s.send(Buffer.alloc(3000), 9, '10.201.0.2', () => s.close());";
  await ns.exec([process.execPath, '-e', sendBig]);
  await ns.exec(['ping', '-c', '1', '-W', '5', '10.201.0.2']);
  assert.equal((await p.waitForEvent<{ seq: number }>('echo')).seq, 1);

  p.send('close');
  const closed = await p.waitForEvent<CloseEvent>('close');
  assert.equal(closed.stats.txPackets, 7);
  assert.ok(closed.stats.rxPackets >= 7); // plus IPv6 router solicitations / MLD reports
  assert.equal(closed.stats.writeErrors, 0);
  assert.equal(closed.stats.rxDropsTruncated, 1);
  // The process exits by itself: nothing (poll handle, fd) is left holding the event loop.
  assert.deepEqual(await p.exited, { code: 0, signal: null });
  const gone = await ns.exec(['ip', 'link', 'show', 'tt4tun0'], { allowFailure: true });
  assert.notEqual(gone.code, 0, 'closing the fd removes the device');
});

test('queued packets arrive in full batches, in order, byte for byte; close from inside the callback', { skip }, async (t) => {
  const ns = await setup(t);
  const datagrams = 200;
  const p = startFixture(ns, 'burst', { name: 'tt4tun1', mtu: 1500, ipv4: '10.202.0.1/24', peer: '10.202.0.2', datagrams });
  const r = await p.waitForEvent<{
    received: number;
    batches: number[];
    inOrder: boolean;
    badChecksums: number;
    sentSha: string;
    receivedSha: string;
  }>('burst');
  assert.equal(r.received, datagrams);
  assert.equal(r.receivedSha, r.sentSha);
  assert.equal(r.inOrder, true);
  assert.equal(r.badChecksums, 0);
  assert.equal(r.batches[0], 64, 'a full queue is read 64 packets per batch');
  assert.ok(r.batches.every((n) => n >= 1 && n <= 64), r.batches.join(','));
  // The fixture closed the device from inside its packet callback.
  await p.waitForEvent('close');
  assert.deepEqual(await p.exited, { code: 0, signal: null });
});

test('deleting the link gives an error event and a close, not a crash', { skip }, async (t) => {
  const ns = await setup(t);
  const p = startFixture(ns, 'echo', { name: 'tt4tun2', mtu: 1500, ipv4: '10.203.0.1/24' });
  await p.waitForEvent('ready');
  await ns.exec(['ip', 'link', 'del', 'tt4tun2']);
  const err = await p.waitForEvent<{ code: string; message: string }>('error');
  assert.equal(err.code, 'TSTIER_E_TUN');
  assert.match(err.message, /tt4tun2/);
  await p.waitForEvent('close');
  assert.deepEqual(await p.exited, { code: 0, signal: null });
});

test('kernel-side open failures are TSTIER_E_TUN and leave no device behind', { skip }, async (t) => {
  const ns = await setup(t);
  // "lo" exists and is not a TUN: TUNSETIFF refuses it.
  const lo = startFixture(ns, 'open', { name: 'lo', mtu: 1500 });
  const loErr = await lo.waitForEvent<{ code: string; message: string; isTstierError: boolean }>('open-error');
  assert.deepEqual([loErr.code, loErr.isTstierError], ['TSTIER_E_TUN', true]);
  assert.match(loErr.message, /TUNSETIFF/);

  // The device is created, then the address is rejected: the device must be gone again.
  const bad = startFixture(ns, 'open', { name: 'tt4tun3', mtu: 1500, ipv4: '10.1.2.300/24' });
  const badErr = await bad.waitForEvent<{ code: string; message: string }>('open-error');
  assert.equal(badErr.code, 'TSTIER_E_TUN');
  assert.match(badErr.message, /IPv4 address/);
  const gone = await ns.exec(['ip', 'link', 'show', 'tt4tun3'], { allowFailure: true });
  assert.notEqual(gone.code, 0);

  // A kernel-named device ("tun%d" pattern) opens and reports the name it got.
  const named = startFixture(ns, 'open', { name: 'tt4x%d', mtu: 1500 });
  assert.equal((await named.waitForEvent<{ name: string }>('opened')).name, 'tt4x0');
  for (const p of [lo, bad, named]) assert.equal((await p.exited).code, 0);
});

test('bad options are refused with TSTIER_E_TUN before touching the kernel', () => {
  const cases = [
    { name: 'x'.repeat(16), mtu: 1500 },
    { name: 'a/b', mtu: 1500 },
    { name: '', mtu: 1500 },
    { name: 'ok0', mtu: 20 },
    { name: 'ok0', mtu: 1200, ipv6: 'fd00::1/64' },
    { name: 'ok0', mtu: 1500, ipv4: '10.0.0.1' },
    { name: 'ok0', mtu: 1500, ipv4: '10.0.0.1/33' },
    { name: 'ok0', mtu: 1500, txQueueLen: 0 },
  ];
  for (const opts of cases) {
    assert.throws(() => TunDevice.open(opts), { name: 'TstierError', code: 'TSTIER_E_TUN' }, JSON.stringify(opts));
  }
});
