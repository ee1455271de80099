import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { joinStreams, SocketPipe, type PipeEnd, type PipeOptions, type PipeStream } from '../../../daemon/carrier/socket-pipe.js';

test('an exception inside one flow resets that flow\'s application and ends its pipe, not the process', async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [accepted] = await once(server, 'connection') as [Socket];
  let aborted = 0;
  const stream: PipeStream = {
    write: () => {
      throw new Error('carrier bug');
    },
    read: () => null,
    readEnded: () => false,
    shutdown: () => undefined,
    abort: () => void aborted++,
    release: () => undefined,
  };
  const ended = new Promise<[PipeEnd, unknown]>((resolve) => {
    new SocketPipe(accepted, stream, () => undefined, (how, cause) => resolve([how, cause]));
  });
  const clientEnd = new Promise<string>((resolve) => {
    client.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    client.on('end', () => resolve('FIN'));
  });
  client.write('hello');
  const [how, cause] = await ended;
  assert.equal(how, 'failed');
  assert.equal((cause as Error).message, 'carrier bug');
  assert.equal(aborted, 1, 'the carrier stream is aborted, so the peer sees a reset');
  assert.equal(await clientEnd, 'ECONNRESET');
  server.close();
});

/**
 * The pipe's rules on real loopback sockets: client ⇄ [a | pipe | b] ⇄ far, where a and b are two
 * accepted/dialled kernel sockets joined by joinStreams (b is the pipe's stream).
 */
interface Rig {
  client: Socket;
  far: Socket;
  /** The socket the pipe reads as its stream. */
  b: Socket;
  ended: Promise<PipeEnd>;
  pipe: SocketPipe;
  close(): void;
}

async function rig(opts: PipeOptions = {}): Promise<Rig> {
  const front = createServer({ allowHalfOpen: true });
  const back = createServer({ allowHalfOpen: true });
  front.listen(0, '127.0.0.1');
  back.listen(0, '127.0.0.1');
  await Promise.all([once(front, 'listening'), once(back, 'listening')]);
  const client = connect({ port: (front.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [a] = await once(front, 'connection') as [Socket];
  const b = connect({ port: (back.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [far] = await once(back, 'connection') as [Socket];
  await once(b, 'connect');
  for (const s of [client, far]) s.on('error', () => undefined);
  let pipe!: SocketPipe;
  const ended = new Promise<PipeEnd>((resolve) => {
    pipe = joinStreams(a, b, (how) => resolve(how), opts);
  });
  return {
    client, far, b, ended, pipe,
    close: () => {
      for (const s of [client, far, a, b]) s.destroy();
      front.close();
      back.close();
    },
  };
}

/** Reads `s` to its FIN; the sha256 of what came, or the error code that ended it. */
function drain(s: Socket): Promise<{ hash: string; bytes: number; error?: string }> {
  const h = createHash('sha256');
  let bytes = 0;
  return new Promise((resolve) => {
    s.on('data', (d: Buffer) => {
      h.update(d);
      bytes += d.length;
    });
    s.on('end', () => resolve({ hash: h.digest('hex'), bytes }));
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ hash: '', bytes, error: e.code ?? e.message }));
  });
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Polls state that has no event of its own (a paused socket); fails after `ms`. */
async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('half-close both ways: each FIN follows every byte before it, the pipe ends clean and counts the bytes', async () => {
  const r = await rig();
  const up = randomBytes(3 * 1024 * 1024 + 17);
  const down = randomBytes(1024 * 1024 + 5);
  const atFar = drain(r.far);
  const atClient = drain(r.client);
  r.client.end(up);
  const far = await atFar;
  assert.equal(far.hash, sha(up), 'the far side got every byte, then the FIN');
  r.far.end(down); // the other direction still works after the first FIN
  const client = await atClient;
  assert.equal(client.hash, sha(down));
  assert.equal(await r.ended, 'clean');
  assert.deepEqual(r.pipe.counters, { rxBytes: up.length, txBytes: down.length });
  r.close();
});

test('back-pressure: a far side that does not read pauses the client\'s socket; nothing piles up in the pipe', async () => {
  const r = await rig();
  r.far.pause();
  const data = randomBytes(48 * 1024 * 1024);
  let maxQueued = 0;
  const write = r.b.write.bind(r.b) as (d: Uint8Array) => boolean;
  r.b.write = ((d: Uint8Array) => {
    const ok = write(d);
    maxQueued = Math.max(maxQueued, r.b.writableLength);
    return ok;
  }) as typeof r.b.write;
  r.client.end(data);
  // The kernel buffers fill, then the pipe's stream side is full and it stops reading the client.
  await until('the client still holding most of its bytes', () => r.client.writableLength > 16 * 1024 * 1024 && r.b.writableNeedDrain);
  const atFar = drain(r.far);
  r.far.resume();
  assert.equal((await atFar).hash, sha(data));
  assert.ok(maxQueued <= r.b.writableHighWaterMark + 2 * 1024 * 1024, `queued at most one read past the high-water mark, saw ${maxQueued}`);
  r.far.end();
  assert.equal(await r.ended, 'clean');
  r.close();
});

test('a reset either way is a reset on the other side', async () => {
  const one = await rig();
  const atFar = drain(one.far);
  one.client.write('x');
  await until('the byte through', () => one.pipe.counters.rxBytes === 1);
  one.client.resetAndDestroy();
  assert.equal((await atFar).error, 'ECONNRESET', 'the application\'s RST reaches the far side as an RST');
  assert.equal(await one.ended, 'reset-by-app');
  one.close();

  const two = await rig();
  const atClient = drain(two.client);
  two.far.write('y');
  await until('the byte through', () => two.pipe.counters.txBytes === 1);
  two.far.resetAndDestroy();
  assert.equal((await atClient).error, 'ECONNRESET', 'the far side\'s RST reaches the application as an RST');
  assert.equal(await two.ended, 'reset-by-peer');
  two.close();
});

test('close-wait: a half-closed pair whose other side never ends is closed after the wait', async () => {
  const r = await rig({ closeWaitMs: 200 });
  const atFar = drain(r.far);
  const atClient = drain(r.client);
  r.client.end('last words');
  await atFar; // our FIN reached the far side, which never sends its own
  assert.equal(await r.ended, 'close-wait');
  await atClient; // and the client's side is closed
  r.close();
});

test('a stream that takes part of the pending bytes when it becomes writable is kicked to send them', async (t) => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [accepted] = await once(server, 'connection') as [Socket];
  t.after(() => {
    client.destroy();
    accepted.destroy();
    server.close();
  });
  const taken: Uint8Array[] = [];
  let room = 4;
  let kicks = 0;
  const stream: PipeStream = {
    // A carrier with `room` bytes of send space: it takes what fits, as a QUIC stream or smux does.
    write: (d) => {
      const n = Math.min(room, d.length);
      taken.push(d.slice(0, n));
      room -= n;
      return n;
    },
    read: () => null,
    readEnded: () => false,
    shutdown: () => undefined,
    abort: () => undefined,
    release: () => undefined,
  };
  const pipe = new SocketPipe(accepted, stream, () => void kicks++, () => undefined);
  client.write('0123456789');
  await until('the first write', () => taken.length > 0);
  assert.equal(Buffer.concat(taken).toString(), '0123');
  room = 4;
  const before = kicks;
  pipe.onWritable();
  assert.equal(Buffer.concat(taken).toString(), '01234567', 'the pending bytes went in as far as they fit');
  assert.ok(kicks > before, 'the driver is asked to send the bytes the stream just took');
  room = 4;
  pipe.onWritable();
  assert.equal(Buffer.concat(taken).toString(), '0123456789');
});
