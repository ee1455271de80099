/** The virtual IPv6 in route sync (RoutePeerInfo field 15), and routing by virtual IPv6 address. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpv6Address } from '../../../daemon/packet/address.js';
import { TstierError } from '../../../daemon/errors.js';
import { EtPeerManager } from '../../../daemon/peer/easytier/manager.js';
import { decodeRoutePeerInfo, encodeRoutePeerInfo, type RoutePeerInfo } from '../../../daemon/peer/easytier/route-msg.js';
import { EtRouteState } from '../../../daemon/peer/easytier/route-state.js';
import { Feature, type Ipv6Net } from '../../../daemon/peer/route-record.js';
import { FAST_PEER, quietLog, until } from './helpers.js';
import { etConnTimers } from '../../../daemon/node/peer-layer.js';

const v6 = (text: string): Uint8Array => parseIpv6Address(text)!;

const base = (peerId: number): RoutePeerInfo => ({
  peerId, instId: new Uint8Array(16).fill(peerId), ipv4: 0x0a000001, networkLength: 24, proxyCidrs: [], hostname: 'h',
  udpNatType: 0, version: 3, easytierVersion: '2.6.4-tstier', featureFlag: { kcpInput: true }, peerRouteId: 1n,
});
const withoutRaw = ({ raw: _raw, ...p }: RoutePeerInfo): RoutePeerInfo => p;

test('a peer info with an IPv6 address survives encode/decode; one without carries no IPv6 field', () => {
  const with6: RoutePeerInfo = { ...base(1), ipv6: { address: v6('fd00:1::5'), prefix: 48 } };
  const back = decodeRoutePeerInfo(encodeRoutePeerInfo(with6));
  assert.deepEqual(back.ipv6, { address: v6('fd00:1::5'), prefix: 48 });
  assert.deepEqual(withoutRaw(back), with6);
  const without = decodeRoutePeerInfo(encodeRoutePeerInfo(base(1)));
  assert.equal(without.ipv6, undefined);
  assert.deepEqual(withoutRaw(without), base(1));
});

test('IPv6 fields: every cut of an encoded peer info is refused (TSTIER_E_BAD_PACKET) or decoded, never thrown otherwise', () => {
  const enc = encodeRoutePeerInfo({ ...base(2), ipv6: { address: v6('fd00::2'), prefix: 64 } });
  for (let cut = 1; cut < enc.length; cut++) {
    try {
      const p = decodeRoutePeerInfo(enc.subarray(0, cut));
      assert.ok(p.ipv6 === undefined || p.ipv6.address.length === 16, `cut ${cut}: an IPv6 address of 16 bytes or none`);
    } catch (e) {
      assert.ok(e instanceof TstierError && e.code === 'TSTIER_E_BAD_PACKET', `cut ${cut}: ${String(e)}`);
    }
  }
});

test('lookupIpv6: exact addresses of reachable nodes, our own included; gone with the route', async (t) => {
  const mk = (n: number, addr?: string): EtPeerManager => new EtPeerManager({ networkName: 'n6', networkSecret: 's6',
    encryption: 'aes-gcm', log: quietLog, timers: etConnTimers(FAST_PEER.timers), backoff: FAST_PEER.backoff,
    local: { hostname: `h${n}`, ipv4: (10 << 24) + n, prefix: 24, proxyCidrs: [], features: Feature.KcpInput,
      ...(addr ? { ipv6: { address: v6(addr), prefix: 64 } satisfies Ipv6Net } : {}) } });
  const [a, b, c] = [mk(1, 'fd00::1'), mk(2, 'fd00::2'), mk(3)];
  t.after(() => Promise.all([a.close(), b.close(), c.close()]));
  const bUdp = await b.listen('udp://127.0.0.1:0');
  a.connect(bUdp);
  c.connect(bUdp);
  await until('C routes to A via B', () => c.routes.nextHop(a.peerId) === b.peerId && a.routes.nextHop(c.peerId) === b.peerId);
  // The address sits inside a larger packet, as in an IPv6 header (destination at byte 24).
  const pkt = new Uint8Array(40);
  pkt.set(v6('fd00::2'), 24);
  assert.equal(c.routes.lookupIpv6(pkt, 24), b.peerId, 'a node learns the address');
  assert.equal(a.routes.lookupIpv6(pkt, 24), b.peerId);
  assert.equal(a.routes.lookupIpv6(v6('fd00::1')), a.peerId, 'own address maps to self');
  assert.equal(c.routes.lookupIpv6(v6('fd00::1')), a.peerId, 'two hops away');
  assert.equal(a.routes.lookupIpv6(v6('fd00::3')), undefined, 'a node without IPv6 owns no IPv6 address');
  assert.equal(a.routes.lookupIpv6(v6('fd00::2').subarray(0, 15)), undefined, 'a short buffer is no address');
  await b.close();
  await until('B unreachable: its address no longer routed', () => a.routes.lookupIpv6(v6('fd00::2')) === undefined, 10_000);
  assert.equal(c.routes.lookupIpv6(v6('fd00::1')), undefined, 'nor A\'s from C, once B, the only path, is gone');
});

test('route sync: an info with an IPv6 prefix over 128 or an IPv4 network length over 32 is dropped and counted; a valid version is taken', () => {
  const me = base(1);
  const state = new EtRouteState(me);
  state.setNeighbours([2, 3], 0);
  const sync = (...peerInfos: RoutePeerInfo[]) => ({ myPeerId: 2, mySessionId: 1n, isInitiator: true, peerInfos, conns: new Map() });
  const bad6 = { ...base(2), ipv6: { address: v6('fd00::2'), prefix: 129 } };
  const bad4 = { ...base(3), networkLength: 33 };
  // Through the wire, as a neighbour would send them: the decoder keeps the numbers, the merge judges them.
  const [in6, in4] = [bad6, bad4].map((p) => decodeRoutePeerInfo(encodeRoutePeerInfo(p)));
  assert.equal(state.merge(sync(in6!, in4!), 0), false);
  assert.equal(state.refusedInfos, 2);
  assert.deepEqual(state.routes(), [], 'no route from a refused info');
  const edge = { ...base(2), version: 4, networkLength: 32, ipv6: { address: v6('fd00::2'), prefix: 128 } };
  assert.equal(state.merge(sync(edge), 0), true, '/32 and /128 are fine');
  assert.deepEqual(state.routes().map((r) => r.peerId), [2]);
  assert.equal(state.refusedInfos, 2);
});
