/**
 * The QUIC core's 'plaintext' crypto (EasyTier 2.6's quinn-plaintext) on the simulator: two
 * endpoints connect and carry a stream byte-exact both ways under loss; every packet's tag is the
 * SeaHash tag of peer/easytier/quic-plaintext.ts (checked there against the reference vector), the
 * header is in clear (the client's Initial: long header, 20-byte destination id, 1-byte packet
 * number, the transport parameters as its CRYPTO data); and a 'tstier' endpoint cannot connect to
 * a 'plaintext' one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { QuicEndpoint } from '../../../daemon/carrier/quic/endpoint.js';
import { loadQuicModule } from '../../../daemon/carrier/quic/wasm.js';
import { plaintextTag } from '../../../daemon/peer/easytier/quic-plaintext.js';
import { Rng, World } from '../../sim/world.js';
import { QuicNode, connectedCount, connectedPair, payload, peerState, sha256 } from './harness.js';

const TAG = 8;

/** A QUIC varint at `off`: [value, length]. */
function varint(b: Uint8Array, off: number): [number, number] {
  const len = 1 << (b[off]! >> 6);
  let v = b[off]! & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
  return [v, len];
}

/** Each packet of a datagram as [header through the packet number, frames, tag] (no header protection to undo). */
function packets(d: Uint8Array): Array<{ header: Uint8Array; frames: Uint8Array; tag: Uint8Array; long: boolean }> {
  const out = [];
  let at = 0;
  while (at < d.length) {
    const first = d[at]!;
    const pnLen = (first & 3) + 1;
    if (!(first & 0x80)) {
      const hdr = 1 + 8 + pnLen; // short header: our connection ids are 8 bytes
      out.push({ header: d.subarray(at, at + hdr), frames: d.subarray(at + hdr, d.length - TAG), tag: d.subarray(d.length - TAG), long: false });
      break;
    }
    let p = at + 5;
    p += 1 + d[p]!; // destination id
    p += 1 + d[p]!; // source id
    if (((first >> 4) & 3) === 0) {
      const [tokenLen, n] = varint(d, p); // Initial: token
      p += n + tokenLen;
    }
    const [len, n] = varint(d, p);
    p += n;
    const end = p + len;
    out.push({ header: d.subarray(at, p + pnLen), frames: d.subarray(p + pnLen, end - TAG), tag: d.subarray(end - TAG, end), long: true });
    at = end;
  }
  return out;
}

test('plaintext crypto: a stream byte-exact both ways at 3 % loss, every packet tagged with SeaHash, headers in clear', async () => {
  const { world, a, b } = await connectedPair({ seed: 41, quic: { crypto: 'plaintext' }, link: { delayMs: 5, loss: 0.03 }, handshake: false });
  const seen: Uint8Array[] = [];
  for (const n of [a, b]) {
    const input = n.input.bind(n);
    n.input = (d, now, from) => {
      seen.push(d.slice(1));
      input(d, now, from);
    };
  }
  a.ep.connect(b.peerId, world.now);
  const rng = new Rng(41);
  const up = payload(rng, 1 << 20);
  const down = payload(rng, 1 << 20);
  b.replyFor = () => down;
  assert.ok(world.run({ until: () => connectedCount(a) > 0 && connectedCount(b) > 0, maxTime: 60_000 }).done, 'handshake');
  const s = a.send(b.node, up)!;
  const r = world.run({ until: () => s.in.fin && peerState(b, s.stream)?.in.fin === true, maxTime: world.now + 300_000 });
  assert.ok(r.done, 'transfer completed');
  assert.equal(peerState(b, s.stream)!.in.digest, sha256(up));
  assert.equal(s.in.digest, sha256(down));

  const initial = packets(seen[0]!)[0]!;
  assert.equal(initial.header[0], 0xc0, 'client Initial: long header, packet number length 1');
  assert.equal(initial.header[5], 20, 'a 20-byte initial destination id');
  assert.equal(initial.frames[0], 0x06, 'its first frame is CRYPTO');
  let tagged = 0;
  for (const d of seen) {
    for (const p of packets(d)) {
      assert.deepEqual(p.tag, plaintextTag(p.header, p.frames), `tag of a ${p.long ? 'long' : 'short'}-header packet`);
      tagged++;
    }
  }
  assert.ok(tagged > 900, `${tagged} packets checked`);
});

test("a 'tstier' endpoint and a 'plaintext' one never connect", async () => {
  const module = await loadQuicModule();
  const world = new World({ seed: 42 });
  const a = new QuicNode(new QuicEndpoint(module, { seed: 1, crypto: 'tstier' }));
  const b = new QuicNode(new QuicEndpoint(module, { seed: 2, crypto: 'plaintext' }));
  for (const n of [a, b]) {
    n.world = world;
    n.node = world.addNode(n);
  }
  world.linkBoth(a.node, b.node, { delayMs: 1 });
  a.ep.connect(b.peerId, world.now);
  world.run({ until: () => a.events.some((e) => e.type === 'connection-lost'), maxTime: 120_000 });
  assert.equal(connectedCount(a) + connectedCount(b), 0);
  assert.ok(a.events.some((e) => e.type === 'connection-lost'), 'the client gives up');
});
