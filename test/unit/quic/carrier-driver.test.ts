/**
 * QuicCarrierDriver between two real QUIC cores joined by an in-process peer seam: a flow's OPEN
 * reaches the acceptor, STATUS comes back, bytes cross both ways byte-exact with FIN; a denied open
 * (QUIC input off) reaches the initiator as Denied; a reset either way reaches the other side;
 * opens beyond the peer's stream limit wait for streams-available instead of failing, heard and
 * untimed meanwhile; writes cut short by the connection's send window resume at `writable`; a
 * connection idle past idleCloseMs is closed, and the next flow opens a new one. With EasyTier's
 * flavour (its crypto, packet types and connect message): Connected without an answer, bytes both
 * ways, a failed dial reset at the source, and a peer's STOP_SENDING ending only our sending.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import { FlowEvent, type FlowSink } from '../../../daemon/carrier/carrier.js';
import { DialStatus, type OpenRequest } from '../../../daemon/carrier/flow-frames.js';
import { QuicCarrierDriver } from '../../../daemon/carrier/quic/driver.js';
import { QuicEndpoint } from '../../../daemon/carrier/quic/endpoint.js';
import type { QuicFlow } from '../../../daemon/carrier/quic/flow.js';
import { loadQuicModule } from '../../../daemon/carrier/quic/wasm.js';
import type { PipeStream } from '../../../daemon/carrier/socket-pipe.js';
import { socketAddrOf } from '../../../daemon/packet/flow-key.js';
import { EtPacketType } from '../../../daemon/peer/easytier/pm.js';
import { EASYTIER_HEADS } from '../../../daemon/peer/easytier/quic-proxy.js';

type Handler = (from: number, payload: Buffer, header: Buffer) => void;

/** Delivers peer packets to the other side on the next turn of the event loop, copied. */
class LoopPeer {
  readonly handlers = new Map<number, Handler>();
  other!: LoopPeer;
  /** A peer that never answers: everything sent to it is lost. */
  deaf = false;
  constructor(readonly id: number) {}
  onPacket(type: number, h: Handler): void {
    this.handlers.set(type, h);
  }
  sendTo(_peerId: number, type: number, payload: Uint8Array): boolean {
    if (this.other.deaf) return true;
    const copy = Buffer.from(payload);
    setImmediate(() => this.other.handlers.get(type)?.(this.id, copy, Buffer.alloc(0)));
    return true;
  }
}

/** One end of a flow as an application would use it: sends `out`, collects what arrives, then FIN. */
class End implements FlowSink<QuicFlow> {
  readonly got: Buffer[] = [];
  sent = 0;
  fin = false;
  reset = false;
  status: DialStatus | null = null;
  pipe: PipeStream | null = null;
  finished: Promise<void>;
  statusKnown: Promise<void>;
  private done!: () => void;
  private gotStatus!: () => void;
  constructor(readonly driver: QuicCarrierDriver, readonly out: Uint8Array) {
    this.finished = new Promise((r) => (this.done = r));
    this.statusKnown = new Promise((r) => (this.gotStatus = r));
  }

  start(flow: QuicFlow): void {
    this.pipe = this.driver.pipeStream(flow);
    this.pump();
    this.drain();
  }

  onFlowEvents(flow: QuicFlow, ev: number): void {
    if (ev & FlowEvent.Status) {
      this.status = flow.status;
      this.gotStatus();
      if (flow.status === DialStatus.Connected) this.start(flow);
      else this.done();
    }
    if (ev & FlowEvent.Reset) {
      this.reset = true;
      this.done();
      return;
    }
    if (ev & FlowEvent.Writable) this.pump();
    if (ev & (FlowEvent.Readable | FlowEvent.Fin)) this.drain();
  }

  pump(): void {
    const p = this.pipe;
    if (!p || this.sent === -1) return;
    while (this.sent < this.out.length) {
      const chunk = this.out.subarray(this.sent, this.sent + 100_000);
      const n = p.write(chunk);
      this.sent += n;
      if (n < chunk.length) return; // as SocketPipe does: the rest waits for Writable
    }
    p.shutdown();
    this.sent = -1;
    this.driver.kick();
  }

  drain(): void {
    const p = this.pipe;
    if (!p) return;
    for (let d = p.read(); d; d = p.read()) this.got.push(Buffer.from(d));
    if (p.readEnded() && !this.fin) {
      this.fin = true;
      this.done();
    }
    this.driver.kick();
  }

  get sha(): string {
    return createHash('sha256').update(Buffer.concat(this.got)).digest('hex');
  }
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const REQ: OpenRequest = { src: socketAddrOf('10.0.0.1', 4000)!, dst: socketAddrOf('10.0.0.2', 80)!, optimistic: false };

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed || 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Captures log lines, so a test can wait for one. */
class LogTap {
  readonly lines: string[] = [];
  private waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  private add(message: string, fields?: Record<string, unknown>): void {
    const line = `${message} ${JSON.stringify(fields ?? {})}`;
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => !(w.re.test(line) && (w.resolve(), true)));
  }
  readonly error = this.add.bind(this);
  readonly warn = this.add.bind(this);
  readonly info = this.add.bind(this);
  readonly debug = this.add.bind(this);
  readonly trace = this.add.bind(this);
  /** Resolves at the first line (past or future) matching `re`. */
  next(re: RegExp): Promise<void> {
    if (this.lines.some((l) => re.test(l))) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ re, resolve }));
  }
}

async function pair(opts: { acceptInput?: boolean; maxStreams?: number; deaf?: boolean; openTimeoutMs?: number; idleCloseMs?: number; sendWindow?: number; easyTier?: boolean } = {}) {
  const module = await loadQuicModule();
  const pa = new LoopPeer(101);
  const pb = new LoopPeer(202);
  pa.other = pb;
  pb.other = pa;
  pb.deaf = opts.deaf ?? false;
  const accepted: Array<{ flow: QuicFlow }> = [];
  let onAccept: (flow: QuicFlow) => void = (flow) => accepted.push({ flow });
  const logA = new LogTap();
  const logB = new LogTap();
  // EasyTier's flavour: its crypto, packet types and stream head, as toward an EasyTier node.
  const et = opts.easyTier ? { heads: EASYTIER_HEADS, types: { fromInitiator: EtPacketType.QuicSrc, fromAcceptor: EtPacketType.QuicDst } } : {};
  const crypto = opts.easyTier ? 'plaintext' : 'tstier';
  const a = new QuicCarrierDriver(pa as never, new QuicEndpoint(module, { seed: 1, sendWindow: opts.sendWindow, crypto }),
    { acceptInput: true, openTimeoutMs: opts.openTimeoutMs, idleCloseMs: opts.idleCloseMs, log: logA as never, ...et }, () => undefined);
  const b = new QuicCarrierDriver(pb as never, new QuicEndpoint(module, { seed: 2, maxStreams: opts.maxStreams, crypto }),
    { acceptInput: opts.acceptInput ?? true, log: logB as never, ...et }, (flow) => onAccept(flow));
  return {
    a, b, accepted, logA, logB,
    setAccept: (fn: (flow: QuicFlow) => void) => (onAccept = fn),
    close: () => {
      a.close();
      b.close();
    },
  };
}

test('a flow opens, gets Connected, and carries bytes both ways byte-exact with FIN', async () => {
  const p = await pair();
  try {
    const up = bytes(3 << 20, 7);
    const down = bytes(1 << 20, 8);
    const client = new End(p.a, up);
    let server: End | undefined;
    p.setAccept((flow) => {
      assert.deepEqual(flow.request, REQ);
      server = new End(p.b, down);
      p.b.attach(flow, server);
      p.b.answer(flow, DialStatus.Connected);
      server.start(flow);
    });
    p.a.open(202, REQ, client);
    await client.finished;
    await server!.finished;
    assert.equal(client.status, DialStatus.Connected);
    assert.equal(server!.sha, sha(up));
    assert.equal(client.sha, sha(down));
    assert.ok(client.fin && server!.fin);
  } finally {
    p.close();
  }
});

test('QUIC input disabled: the open is answered Denied and nothing is asked of the node', async () => {
  const p = await pair({ acceptInput: false });
  try {
    const client = new End(p.a, bytes(10, 1));
    const flow = p.a.open(202, REQ, client);
    await client.finished;
    assert.equal(client.status, DialStatus.Denied);
    assert.ok(flow.heard, 'the peer answered, so this was a refusal, not silence');
    assert.equal(p.accepted.length, 0);
    assert.equal(p.b.stats.refusedOpens, 1);
  } finally {
    p.close();
  }
});

for (const who of ['initiator', 'acceptor'] as const) {
  test(`an abort by the ${who} reaches the other side as a reset`, async () => {
    const p = await pair();
    try {
      const client = new End(p.a, new Uint8Array(0));
      client.sent = -1; // keep the stream open: no FIN
      let server: End | undefined;
      let serverFlow: QuicFlow | undefined;
      const ready = new Promise<void>((resolve) => p.setAccept((flow) => {
        server = new End(p.b, new Uint8Array(0));
        server.sent = -1;
        serverFlow = flow;
        p.b.attach(flow, server);
        p.b.answer(flow, DialStatus.Connected);
        server.start(flow);
        resolve();
      }));
      const flow = p.a.open(202, REQ, client);
      await ready;
      await client.statusKnown;
      if (who === 'initiator') p.a.abort(flow);
      else p.b.abort(serverFlow!);
      const target = who === 'initiator' ? server! : client;
      await target.finished;
      assert.ok(target.reset, 'the other side saw a reset');
      assert.ok(!target.fin);
    } finally {
      p.close();
    }
  });
}

test('opens beyond the peer stream limit wait for streams-available, heard and past the open timeout, and all complete', async () => {
  // The first flows' replies start after 4 open timeouts: the other flows wait that long for a stream.
  const p = await pair({ maxStreams: 4, openTimeoutMs: 100 });
  try {
    const servers: End[] = [];
    const waitedFlows: QuicFlow[] = [];
    p.setAccept((flow) => {
      const s = new End(p.b, bytes(1000, flow.request!.src.port));
      servers.push(s);
      p.b.attach(flow, s);
      p.b.answer(flow, DialStatus.Connected);
      if (servers.length > 4) return s.start(flow);
      // Meanwhile the rest wait for a stream: the peer answered, so they count as heard.
      setTimeout(() => {
        waitedFlows.push(...flowsA.filter((f) => f.conn < 0));
        s.start(flow);
        p.b.kick();
      }, 400);
    });
    const flowsA: QuicFlow[] = [];
    const clients = Array.from({ length: 20 }, (_, i) => {
      const c = new End(p.a, bytes(5000, i));
      flowsA.push(p.a.open(202, { ...REQ, src: socketAddrOf('10.0.0.1', 5000 + i)! }, c));
      return c;
    });
    await Promise.all(clients.map((c) => c.finished));
    await Promise.all(servers.map((s) => s.finished));
    assert.equal(servers.length, 20);
    assert.ok(waitedFlows.length >= 16 && waitedFlows.every((f) => f.heard), `${waitedFlows.length} flows waited, all heard`);
    clients.forEach((c, i) => {
      assert.equal(c.status, DialStatus.Connected);
      assert.equal(c.sha, sha(bytes(1000, 5000 + i)), `flow ${i} down`);
    });
    assert.deepEqual(new Set(servers.map((s) => s.sha)), new Set(clients.map((_, i) => sha(bytes(5000, i)))));
  } finally {
    p.close();
  }
});

test('a peer that never answers: the open ends Unreachable at its timeout, never heard (so the proxy may fall back)', async () => {
  const p = await pair({ deaf: true, openTimeoutMs: 200 });
  try {
    const client = new End(p.a, bytes(10, 1));
    const flow = p.a.open(202, REQ, client);
    await client.finished;
    assert.equal(client.status, DialStatus.Unreachable);
    assert.equal(flow.heard, false);
    assert.ok(flow.ended);
  } finally {
    p.close();
  }
});

test('a connection idle past idleCloseMs is closed by its initiator; the next flow opens a new one', async () => {
  const p = await pair({ idleCloseMs: 150 });
  p.setAccept((flow) => {
    const s = new End(p.b, bytes(2000, 9));
    p.b.attach(flow, s);
    p.b.answer(flow, DialStatus.Connected);
    s.start(flow);
    void s.finished.then(() => s.pipe!.release()); // as a SocketPipe does once both ways ended
  });
  try {
    for (const round of [1, 2]) {
      const c = new End(p.a, bytes(3000, round));
      const flow = p.a.open(202, REQ, c);
      await c.finished;
      assert.equal(c.sha, sha(bytes(2000, 9)), `round ${round}: bytes down`);
      c.pipe!.release();
      const conn = flow.conn;
      await p.logA.next(new RegExp(`QUIC connection closed: idle .*"conn":${conn}`));
      // The peer learns of the close as a routine loss (no flow reset, so not a warning).
      await p.logB.next(/^QUIC connection lost .*"reason":"application-closed"/);
      assert.equal(p.b.ep.connectionCount, 0, `round ${round}: the acceptor forgot the connection`);
      assert.ok(!p.logA.lines.concat(p.logB.lines).some((l) => /flows are reset/.test(l)), 'no flow was reset');
      p.logB.lines.length = 0;
    }
    assert.equal(p.a.ep.connectionCount, 0);
  } finally {
    p.close();
  }
});

test('writes cut short by the connection send window resume: flows sharing a small window all complete', { timeout: 20_000 }, async () => {
  // quinn signals `writable` only after a refused write; a short one must be followed by a refused
  // one, or the flow waits forever (seen with 1,000 flows sharing the 16 MiB window).
  const p = await pair({ sendWindow: 50_000 });
  const servers: End[] = [];
  p.setAccept((flow) => {
    const s = new End(p.b, bytes(10, 1));
    servers.push(s);
    p.b.attach(flow, s);
    p.b.answer(flow, DialStatus.Connected);
    s.start(flow);
  });
  try {
    const clients = [1, 2, 3].map((i) => {
      const c = new End(p.a, bytes(150_000, 40 + i));
      p.a.open(202, { ...REQ, src: socketAddrOf('10.0.0.1', 6000 + i)! }, c);
      return c;
    });
    await Promise.all(clients.map((c) => c.finished));
    await Promise.all(servers.map((s) => s.finished));
    assert.deepEqual(new Set(servers.map((s) => s.sha)), new Set([1, 2, 3].map((i) => sha(bytes(150_000, 40 + i)))));
  } finally {
    p.close();
  }
});

test("EasyTier's framing: the connect message opens the flow, Connected without an answer, bytes both ways byte-exact", async () => {
  const p = await pair({ easyTier: true });
  try {
    const up = bytes(2 << 20, 21);
    const down = bytes(1 << 20, 22);
    const client = new End(p.a, up);
    let server: End | undefined;
    p.setAccept((flow) => {
      assert.deepEqual([flow.request?.src, flow.request?.dst], [REQ.src, REQ.dst]);
      server = new End(p.b, down);
      p.b.attach(flow, server);
      p.b.answer(flow, DialStatus.Connected);
      server.start(flow);
    });
    const flow = p.a.open(202, REQ, client);
    await client.statusKnown;
    assert.equal(flow.stream >= 0 && client.status, DialStatus.Connected, 'Connected once the stream opens, before the acceptor dialled');
    await client.finished;
    await server!.finished;
    assert.equal(server!.sha, sha(up));
    assert.equal(client.sha, sha(down));
    assert.equal(EASYTIER_HEADS.open({ ...REQ, src: socketAddrOf('::1', 1)! }), null, 'IPv6 is not carried');
  } finally {
    p.close();
  }
});

test("EasyTier's framing: a failed dial resets the flow at its source; the peer's STOP_SENDING ends only our sending", async () => {
  const p = await pair({ easyTier: true });
  try {
    const refused = new End(p.a, bytes(1000, 1));
    p.setAccept((flow) => p.b.answer(flow, DialStatus.Refused));
    p.a.open(202, REQ, refused);
    await refused.finished;
    assert.ok(refused.reset, 'the source sees the reset');

    // EasyTier ends a flow once either side ends: it stops reading while its own bytes still drain.
    const down = bytes(1 << 20, 23);
    const client = new End(p.a, bytes(4 << 20, 24));
    p.setAccept((flow) => {
      const server = new End(p.b, down);
      p.b.attach(flow, server);
      p.b.answer(flow, DialStatus.Connected);
      server.start(flow);
      p.b.ep.stop(flow.conn, flow.stream, 0);
    });
    p.a.open(202, REQ, client);
    await client.finished;
    assert.deepEqual([client.reset, client.fin, client.sha], [false, true, sha(down)], 'read on to the FIN, no reset');
  } finally {
    p.close();
  }
});
