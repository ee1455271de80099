import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { SocketPipe, type PipeEnd, type PipeStream } from '../../../daemon/carrier/socket-pipe.js';

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
