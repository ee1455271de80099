import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TstierError } from '../../../daemon/errors.js';
import { smuxConfig } from '../../../daemon/transport/smux/config.js';
import {
  CMD_FIN, CMD_NOP, CMD_PSH, CMD_SYN, CMD_UPD, encodeFrame, readHeader,
} from '../../../daemon/transport/smux/frame.js';
import { type SmuxEvent, SmuxSession } from '../../../daemon/transport/smux/session.js';
import type { SmuxConfig } from '../../../daemon/transport/smux/config.js';

/** Everything the session wants to send now, as one fresh buffer. */
function drain(s: SmuxSession): Uint8Array {
  const parts: Uint8Array[] = [];
  for (;;) {
    const buf = new Uint8Array(65536);
    const n = s.pollTransmit(buf);
    if (n === 0) break;
    parts.push(buf.subarray(0, n));
  }
  return Buffer.concat(parts);
}

function frames(bytes: Uint8Array): { cmd: number; sid: number; payload: Uint8Array }[] {
  const out = [];
  const h = { version: 0, cmd: 0, length: 0, sid: 0 };
  for (let o = 0; o < bytes.length;) {
    readHeader(bytes, o, h);
    out.push({ cmd: h.cmd, sid: h.sid, payload: bytes.subarray(o + 8, o + 8 + h.length) });
    o += 8 + h.length;
  }
  return out;
}

function events(s: SmuxSession): SmuxEvent[] {
  const out: SmuxEvent[] = [];
  for (let e = s.pollEvent(); e; e = s.pollEvent()) out.push(e);
  return out;
}

/** Moves bytes both ways until neither side has anything to send. */
function exchange(a: SmuxSession, b: SmuxSession): void {
  for (let i = 0; i < 1000; i++) {
    const ab = drain(a);
    const ba = drain(b);
    if (ab.length === 0 && ba.length === 0) return;
    if (ab.length) b.input(ab, 0);
    if (ba.length) a.input(ba, 0);
  }
  assert.fail('exchange did not settle');
}

function pair(config: Partial<SmuxConfig> = {}): [SmuxSession, SmuxSession] {
  return [new SmuxSession('client', config, 0), new SmuxSession('server', config, 0)];
}

function closedError(s: SmuxSession): TstierError | null {
  const closed = events(s).find((e) => e.type === 'closed');
  assert.ok(closed && closed.type === 'closed', 'session should report closed');
  return closed.error;
}

test('frame header encodes as the spec lays it out', () => {
  const f = encodeFrame(1, CMD_PSH, 3, Uint8Array.of(0xaa, 0xbb));
  assert.equal(Buffer.from(f).toString('hex'), '0102020003000000aabb');
  const h = readHeader(encodeFrame(2, CMD_UPD, 0x01020304), 0, { version: 0, cmd: 0, length: 0, sid: 0 });
  assert.deepEqual(h, { version: 2, cmd: CMD_UPD, length: 0, sid: 0x01020304 });
});

test('config: defaults are kcptun 2021, bad values name their key', () => {
  const c = smuxConfig();
  assert.equal(c.version, 1);
  assert.equal(c.maxFrameSize, 32768);
  assert.equal(c.maxReceiveBuffer, 4194304);
  assert.equal(c.maxStreamBuffer, 2097152);
  assert.equal(c.keepAliveInterval, 10000);
  assert.equal(c.keepAliveTimeout, 30000);
  assert.throws(() => smuxConfig({ version: 3 as 1 }), (e: TstierError) => e.code === 'TSTIER_E_BAD_CONFIG' && /smux\.version/.test(e.message));
  assert.throws(() => smuxConfig({ maxFrameSize: 65536 }), /smux\.maxFrameSize/);
  assert.throws(() => smuxConfig({ maxStreamBuffer: 10, maxReceiveBuffer: 5 }), /smux\.maxStreamBuffer/);
});

test('stream ids: client 3, 5, 7; server 2, 4; SYN precedes data', () => {
  const [a, b] = pair();
  assert.deepEqual([a.open(), a.open(), a.open()], [3, 5, 7]);
  assert.deepEqual([b.open(), b.open()], [2, 4]);
  assert.equal(a.write(3, Buffer.from('hi')), 2);
  const f = frames(drain(a));
  assert.deepEqual(f.map((x) => [x.cmd, x.sid]), [[CMD_SYN, 3], [CMD_PSH, 3], [CMD_SYN, 5], [CMD_SYN, 7]]);
  b.input(Buffer.concat(f.map((x) => encodeFrame(1, x.cmd, x.sid, x.payload))), 0);
  const ev = events(b);
  assert.deepEqual(ev.slice(0, 2), [{ type: 'accept', sid: 3 }, { type: 'readable', sid: 3 }]);
  assert.equal(Buffer.from(b.read(3)!).toString(), 'hi');
  assert.equal(b.read(3), null);
});

test('PSH frames are cut to maxFrameSize and to the caller buffer', () => {
  const a = new SmuxSession('client', { maxFrameSize: 1000 }, 0);
  const sid = a.open() as number;
  assert.equal(a.write(sid, new Uint8Array(2500)), 2500);
  const f = frames(drain(a));
  assert.deepEqual(f.map((x) => x.payload.length), [0, 1000, 1000, 500]);
  a.write(sid, new Uint8Array(100));
  const small = new Uint8Array(50);
  const n = a.pollTransmit(small);
  assert.equal(n, 50);
  assert.equal(frames(small)[0]!.payload.length, 42);
});

test('round robin between streams, control frames before data', () => {
  const a = new SmuxSession('client', { maxFrameSize: 100, version: 2 }, 0);
  const s1 = a.open() as number;
  const s2 = a.open() as number;
  a.write(s1, new Uint8Array(300));
  a.write(s2, new Uint8Array(300));
  const f = frames(drain(a));
  assert.deepEqual(f.map((x) => `${x.cmd}:${x.sid}`), [
    '0:3', '2:3', '0:5', '2:5', '2:3', '2:5', '2:3', '2:5',
  ]);
});

test('half-close each way: FIN after data, reading goes on', () => {
  const [a, b] = pair();
  const sid = a.open() as number;
  a.write(sid, Buffer.from('request'));
  a.closeWrite(sid);
  assert.equal(a.write(sid, Buffer.from('late')), 0, 'no writes after closeWrite');
  exchange(a, b);
  const ev = events(b).map((e) => e.type);
  assert.deepEqual(ev, ['accept', 'readable', 'fin']);
  assert.equal(b.readEnded(sid), false, 'data before the FIN is still buffered');
  assert.equal(Buffer.from(b.read(sid)!).toString(), 'request');
  assert.equal(b.readEnded(sid), true);
  // The other direction still works after the FIN.
  const reply = new Uint8Array(200000).fill(7);
  let off = 0;
  let got = 0;
  while (off < reply.length) {
    off += b.write(sid, reply.subarray(off));
    exchange(a, b);
    for (let c = a.read(sid); c; c = a.read(sid)) got += c.length;
  }
  assert.equal(got, reply.length);
  b.closeWrite(sid);
  exchange(a, b);
  assert.ok(events(a).some((e) => e.type === 'fin' && e.sid === sid));
  assert.equal(a.readEnded(sid), true);
  a.close(sid);
  b.close(sid);
  exchange(a, b);
  assert.equal(a.streamCount, 0);
  assert.equal(b.streamCount, 0);
});

test('data for unknown or closed streams is discarded without harm', () => {
  const b = new SmuxSession('server', {}, 0);
  b.input(encodeFrame(1, CMD_PSH, 99, new Uint8Array(1000)), 0);
  assert.deepEqual(events(b), []);
  b.input(encodeFrame(1, CMD_SYN, 3), 0);
  b.close(3);
  b.input(encodeFrame(1, CMD_PSH, 3, new Uint8Array(10)), 0);
  assert.deepEqual(events(b).map((e) => e.type), ['accept']);
  assert.equal(b.read(3), null);
  assert.equal(frames(drain(b)).map((f) => f.cmd).join(), String(CMD_FIN));
  assert.equal(b.streamCount, 0);
  assert.equal(b.isClosed(), false);
});

test('malformed input ends the session with an error, never a throw', () => {
  const cases: [string, Uint8Array, string][] = [
    ['wrong version', encodeFrame(2, CMD_NOP, 0), 'TSTIER_E_PROTOCOL'],
    ['unknown command', encodeFrame(1, 5, 0), 'TSTIER_E_PROTOCOL'],
    ['garbage version byte', Uint8Array.of(0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54), 'TSTIER_E_PROTOCOL'],
    ['UPD with short payload', encodeFrame(1, CMD_UPD, 3, new Uint8Array(4)), 'TSTIER_E_PROTOCOL'],
  ];
  for (const [name, bytes, code] of cases) {
    const s = new SmuxSession('server', {}, 0);
    s.input(bytes, 0);
    assert.equal(s.isClosed(), true, name);
    const err = closedError(s);
    assert.equal(err?.code, code, name);
    if (name === 'wrong version') assert.match(err!.message, /invalid protocol/);
    // A dead session stays inert.
    s.input(encodeFrame(1, CMD_SYN, 3), 0);
    assert.equal(s.pollEvent(), null);
    assert.equal(s.pollTransmit(new Uint8Array(64)), 0);
    assert.ok(s.open() instanceof TstierError);
  }
  // Truncated: the underlying stream ends inside a frame.
  const t = new SmuxSession('server', {}, 0);
  t.input(encodeFrame(1, CMD_PSH, 3, new Uint8Array(100)).subarray(0, 50), 0);
  t.inputEnded();
  assert.equal(closedError(t)?.code, 'TSTIER_E_PROTOCOL');
  const clean = new SmuxSession('server', {}, 0);
  clean.inputEnded();
  assert.equal(closedError(clean)?.code, 'TSTIER_E_CLOSED');
  // Random garbage never throws.
  for (let seed = 0; seed < 300; seed++) {
    const s = new SmuxSession('server', {}, 0);
    const junk = new Uint8Array(64).map((_, i) => (seed * 31 + i * 17) & 0xff);
    junk[0] = 1;
    s.input(junk, 0);
  }
});

test('UPD is accepted in a v1 session (smux 1.5.16 behaviour)', () => {
  const s = new SmuxSession('server', {}, 0);
  s.input(encodeFrame(1, CMD_SYN, 3), 0);
  const upd = new Uint8Array(8);
  upd[4] = 1;
  s.input(encodeFrame(1, CMD_UPD, 3, upd), 0);
  assert.equal(s.isClosed(), false);
});

test('keepalive: NOP every interval; a peer silent for the timeout closes the session, no later', () => {
  const s = new SmuxSession('client', { keepAliveInterval: 10000, keepAliveTimeout: 30000 }, 1000);
  assert.equal(s.pollTimeout(), 11000);
  s.handleTimeout(11000);
  assert.deepEqual(frames(drain(s)).map((f) => [f.cmd, f.sid]), [[CMD_NOP, 0]]);
  s.handleTimeout(21000);
  // The peer's frame at 25 s moves the deadline to 55 s (smux's ticker would wait for its 61 s check).
  s.input(encodeFrame(1, CMD_NOP, 0), 25000);
  s.handleTimeout(31000);
  s.handleTimeout(41000);
  s.handleTimeout(51000);
  assert.equal(s.pollTimeout(), 55000);
  s.handleTimeout(54999);
  assert.equal(s.isClosed(), false);
  s.handleTimeout(55000);
  assert.equal(s.isClosed(), true);
  assert.equal(closedError(s)?.code, 'TSTIER_E_CLOSED');
  assert.equal(s.pollTimeout(), null);
});

test('keepalive: no timeout while the receive bucket is exhausted (input paused on purpose)', () => {
  const s = new SmuxSession('server', { maxReceiveBuffer: 1000, maxStreamBuffer: 1000 }, 0);
  s.input(encodeFrame(1, CMD_SYN, 3), 0);
  s.input(encodeFrame(1, CMD_PSH, 3, new Uint8Array(1000)), 0);
  assert.equal(s.wantsInput(), false);
  for (let t = 10000; t <= 120000; t += 10000) s.handleTimeout(t);
  assert.equal(s.isClosed(), false);
  events(s);
  s.read(3, 10);
  assert.equal(s.wantsInput(), true);
  assert.deepEqual(events(s), [{ type: 'input-ready' }]);
});

test('v1 bucket: input stops when unread data reaches maxReceiveBuffer, resumes on read', () => {
  const [a, b] = pair({ maxReceiveBuffer: 10000, maxStreamBuffer: 5000 });
  const sid = a.open() as number;
  let written = 0;
  for (let i = 0; i < 10; i++) written += a.write(sid, new Uint8Array(4000));
  assert.equal(written, 40000);
  // Feed b only while it wants input, the way an adapter reading KCP would.
  let wire = Buffer.from(drain(a));
  while (wire.length && b.wantsInput()) {
    b.input(wire.subarray(0, 1000), 0);
    wire = wire.subarray(1000);
  }
  assert.equal(b.wantsInput(), false);
  assert.ok(b.readable(sid) >= 10000 && b.readable(sid) < 11000);
  let got = 0;
  for (let chunk = b.read(sid); chunk; chunk = b.read(sid)) got += chunk.length;
  assert.ok(events(b).some((e) => e.type === 'input-ready'));
  b.input(wire, 0);
  for (let chunk = b.read(sid); chunk; chunk = b.read(sid)) got += chunk.length;
  assert.equal(got, 40000);
});

test('v2 flow control: sender stalls at the 262144-byte initial window until UPD, then resumes', () => {
  const [a, b] = pair({ version: 2, maxStreamBuffer: 1 << 20, streamSendBuffer: 1 << 22 });
  const sid = a.open() as number;
  const data = new Uint8Array(600000);
  assert.equal(a.write(sid, data), 262144, 'initial peer window');
  assert.equal(a.writable(sid), 0);
  b.input(drain(a), 0);
  assert.equal(b.readable(sid), 262144);
  assert.equal(drain(b).length, 0, 'no UPD before the first read');
  // First read: UPD(consumed = bytes read, window = maxStreamBuffer).
  const first = b.read(sid, 4096)!;
  assert.equal(first.length, 4096);
  const upd = frames(drain(b));
  assert.equal(upd.length, 1);
  assert.equal(upd[0]!.cmd, CMD_UPD);
  assert.equal(Buffer.from(upd[0]!.payload).toString('hex'), '00100000' + '00001000');
  a.input(encodeFrame(2, CMD_UPD, sid, upd[0]!.payload), 0);
  assert.deepEqual(events(a), [{ type: 'writable', sid }]);
  // Window 1 MiB, 4096 consumed: room for 1 MiB - 258048 more.
  assert.equal(a.writable(sid), (1 << 20) - 262144 + 4096);
  assert.equal(a.write(sid, data.subarray(262144)), 600000 - 262144);
  // Later reads send a UPD only once half the window has been consumed.
  b.input(drain(a), 0);
  let read = 4096;
  let upds = 0;
  while (read < 600000) {
    read += b.read(sid, 65536)!.length;
    upds += frames(drain(b)).filter((f) => f.cmd === CMD_UPD).length;
    if (read < (1 << 19) + 4096) assert.equal(upds, 0, `no UPD at ${read}`);
  }
  assert.equal(upds, 1);
});

test('accept backlog: 1024 unaccepted streams pause input until one is taken', () => {
  const s = new SmuxSession('server', {}, 0);
  const syns = Buffer.concat(Array.from({ length: 1024 }, (_, i) => encodeFrame(1, CMD_SYN, 3 + 2 * i)));
  s.input(syns, 0);
  assert.equal(s.wantsInput(), false);
  assert.deepEqual(s.pollEvent(), { type: 'accept', sid: 3 });
  assert.equal(s.wantsInput(), true);
  const rest = events(s);
  assert.equal(rest.filter((e) => e.type === 'accept').length, 1023);
  assert.ok(rest.some((e) => e.type === 'input-ready'));
});

test('a small payload inside a large input buffer is copied, not pinned', () => {
  const s = new SmuxSession('server', {}, 0);
  const big = new Uint8Array(1 << 20);
  big.set(encodeFrame(1, CMD_SYN, 3), 0);
  big.set(encodeFrame(1, CMD_PSH, 3, Buffer.from('tiny')), 8);
  s.input(big.subarray(0, 8 + 12), 0);
  const got = s.read(3)!;
  assert.equal(Buffer.from(got).toString(), 'tiny');
  assert.ok(got.buffer.byteLength < 1024, 'the 1 MiB buffer is not retained');
});

test('random corruption of a valid frame stream never throws', () => {
  const [a] = pair({ version: 2 });
  for (let i = 0; i < 5; i++) {
    const sid = a.open() as number;
    a.write(sid, new Uint8Array(3000 + i).fill(i));
    if (i % 2) a.closeWrite(sid);
  }
  const wire = drain(a);
  let seed = 12345;
  const next = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let failed = 0;
  for (let trial = 0; trial < 500; trial++) {
    const bad = wire.slice();
    for (let k = 1 + next(3); k > 0; k--) bad[next(bad.length)]! ^= 1 << next(8);
    const s = new SmuxSession('server', { version: 2 }, 0);
    for (let p = 0; p < bad.length;) {
      const n = 1 + next(500);
      s.input(bad.subarray(p, p + n), 0);
      p += n;
    }
    for (let e = s.pollEvent(); e; e = s.pollEvent()) {
      if (e.type === 'readable') while (s.read(e.sid)) { /* drain */ }
    }
    drain(s);
    if (s.isClosed()) failed++;
  }
  // Flips in version or cmd bytes must be caught; flips elsewhere may go unnoticed (smux has no checksum).
  assert.ok(failed > 0);
});
