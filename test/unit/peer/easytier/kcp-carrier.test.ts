/**
 * The EasyTier KCP carrier as the proxy drives it: two carriers joined through an in-process stand-in
 * for the EasyTier peer layer's kcp-sys hook. A flow opened on one arrives on the other as an open
 * request naming the dialled address; answered Connected, it carries bytes both ways through the
 * PipeStreams (sha256 at both ends) and half-closes cleanly. A node that takes no KCP input leaves
 * the open unanswered; a failed dial over there resets the flow; an IPv6 flow is refused at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { FlowEvent, type FlowSink } from '../../../../daemon/carrier/carrier.js';
import { DialStatus } from '../../../../daemon/carrier/flow-frames.js';
import type { PipeStream } from '../../../../daemon/carrier/socket-pipe.js';
import { EtKcpCarrierDriver, type EtKcpFlow, type EtKcpPeerSeam } from '../../../../daemon/peer/easytier/kcp-carrier.js';
import { parseIpv6Address } from '../../../../daemon/packet/address.js';

const A = 0x0a0a0a0a;
const B = 0x0b0b0b0b;
const req = { src: { ip: Uint8Array.of(10, 1, 0, 1), port: 40001 }, dst: { ip: Uint8Array.of(10, 1, 0, 2), port: 5201 }, optimistic: true };

/** Two peer seams wired to each other; a packet is delivered on a later turn, as a socket would. */
function link(): { a: EtKcpPeerSeam; b: EtKcpPeerSeam } {
  const handlers = new Map<number, Map<number, (from: number, p: Buffer) => void>>([[A, new Map()], [B, new Map()]]);
  const seam = (me: number): EtKcpPeerSeam => ({
    onEasyTierPacket: (type, h) => handlers.get(me)!.set(type, h),
    sendEasyTier: (to, type, payload) => {
      const copy = Buffer.from(payload);
      setImmediate(() => handlers.get(to)?.get(type)?.(me, copy));
      return true;
    },
  });
  return { a: seam(A), b: seam(B) };
}

/** Collects a flow's events; resolves waiters when a bit arrives. */
class Sink implements FlowSink<EtKcpFlow> {
  seen = 0;
  #waiters: { bits: number; resolve: () => void }[] = [];
  onFlowEvents(_flow: EtKcpFlow, events: number): void {
    this.seen |= events;
    this.onEvents?.(events);
    this.#waiters = this.#waiters.filter((w) => (this.seen & w.bits ? (w.resolve(), false) : true));
  }
  onEvents?: (events: number) => void;
  wait(bits: number): Promise<void> {
    return this.seen & bits ? Promise.resolve() : new Promise((resolve) => this.#waiters.push({ bits, resolve }));
  }
}

/** Writes `data` into `s` as room allows (driven by Writable), then half-closes; reads into `got` until the peer's FIN. */
function pump(s: PipeStream, sink: Sink, data: Uint8Array, kick: () => void): Promise<Buffer> {
  let off = 0;
  const got: Buffer[] = [];
  return new Promise((resolve) => {
    const step = (): void => {
      while (off < data.length) {
        const n = s.write(data.subarray(off, off + 16384));
        if (n === 0) break;
        off += n;
      }
      if (off === data.length && off >= 0) {
        s.shutdown();
        off = -1;
      }
      for (let d = s.read(); d; d = s.read()) got.push(Buffer.from(d));
      kick();
      if (s.readEnded()) resolve(Buffer.concat(got));
    };
    sink.onEvents = step;
    step();
  });
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('a flow each way between two EasyTier KCP carriers: open request, Connected, bytes intact, clean half-closes', async () => {
  const seams = link();
  const accepted: EtKcpFlow[] = [];
  const a = new EtKcpCarrierDriver(seams.a, A, { acceptInput: true }, () => assert.fail('A got an open'));
  let onOpen: (f: EtKcpFlow) => void = () => {};
  const b = new EtKcpCarrierDriver(seams.b, B, { acceptInput: true }, (f) => onOpen(f));
  try {
    const opened = new Promise<EtKcpFlow>((resolve) => (onOpen = resolve));
    const aSink = new Sink();
    const flow = a.open(B, req, aSink);
    const bFlow = await opened;
    accepted.push(bFlow);
    assert.deepEqual(bFlow.request, req, 'the acceptor learns the address the client dialled');
    const bSink = new Sink();
    b.attach(bFlow, bSink);
    b.answer(bFlow, DialStatus.Connected);
    await aSink.wait(FlowEvent.Status);
    assert.equal(flow.status, DialStatus.Connected);
    const up = randomBytes(600_000);
    const down = randomBytes(400_000);
    const [atB, atA] = await Promise.all([
      pump(b.pipeStream(bFlow), bSink, down, () => b.kick()),
      pump(a.pipeStream(flow), aSink, up, () => a.kick()),
    ]);
    assert.equal(sha(atB), sha(up));
    assert.equal(sha(atA), sha(down));
    assert.deepEqual([flow.txBytes, flow.rxBytes], [up.length, down.length]);
  } finally {
    a.close();
    b.close();
  }
});

test('a failed dial at the acceptor resets the flow; an IPv6 flow is refused at once', async () => {
  const seams = link();
  const a = new EtKcpCarrierDriver(seams.a, A, { acceptInput: true }, () => undefined);
  const b = new EtKcpCarrierDriver(seams.b, B, { acceptInput: true }, (f) => b.answer(f, DialStatus.Refused));
  try {
    const sink = new Sink();
    a.open(B, req, sink);
    await sink.wait(FlowEvent.Reset);
    const v6 = new Sink();
    const f6 = a.open(B, { ...req, src: { ip: parseIpv6Address('fd00::1')!, port: 1 }, dst: { ip: parseIpv6Address('fd00::2')!, port: 2 } }, v6);
    await v6.wait(FlowEvent.Status);
    assert.equal(f6.status, DialStatus.Unreachable);
  } finally {
    a.close();
    b.close();
  }
});

test('a node that takes no KCP input never answers an open: nothing is accepted', async () => {
  const seams = link();
  let opens = 0;
  const a = new EtKcpCarrierDriver(seams.a, A, { acceptInput: true }, () => undefined);
  const b = new EtKcpCarrierDriver(seams.b, B, { acceptInput: false }, () => opens++);
  try {
    assert.equal(b.dst, null);
    const sink = new Sink();
    const flow = a.open(B, req, sink);
    await new Promise((r) => setTimeout(r, 300)); // a bound, not a sleep for an event: nothing is to happen
    assert.deepEqual([opens, flow.status, sink.seen], [0, null, 0]);
  } finally {
    a.close();
    b.close();
  }
});
