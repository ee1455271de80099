/**
 * Interop with the real kcptun 2021 server (Debian's kcptun-server), every cipher:
 * we seal a datagram carrying a KCP PUSH (a few smux NOP frames) and the server must
 * accept it (its CRC/decryption holds) and answer with an ACK that we open and parse.
 * Loopback only; skipped when kcptun-server is not installed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { newDatagramCrypt, type DatagramCrypt } from '../../../daemon/transport/crypt/datagram.js';
import { deriveKcptunKey } from '../../../daemon/transport/crypt/kdf.js';

const SERVER = '/usr/bin/kcptun-server';
const CIPHERS = ['aes', 'aes-128', 'aes-192', 'salsa20', 'blowfish', 'twofish', 'cast5', '3des', 'tea', 'xtea', 'xor', 'sm4', 'none'];
const KEY = 'testkey';
const NOPS = 40; // 320 bytes of payload: several cipher blocks and several Salsa20 blocks
const CONV = 0x1234abcd;

/** crypto header | FEC data shard header | KCP PUSH sn 0 | NOP frames (smux v1, sid 0). */
function pushDatagram(crypt: DatagramCrypt): Uint8Array {
  const h = crypt.headerSize;
  const kcpLen = 24 + 8 * NOPS;
  const buf = new Uint8Array(h + 8 + kcpLen);
  const v = new DataView(buf.buffer);
  v.setUint32(h, 0, true); // FEC seqid
  v.setUint16(h + 4, 0xf1, true);
  v.setUint16(h + 6, 2 + kcpLen, true);
  const k = h + 8;
  v.setUint32(k, CONV, true);
  buf[k + 4] = 81; // PUSH
  v.setUint16(k + 6, 128, true); // wnd
  v.setUint32(k + 20, 8 * NOPS, true);
  for (let i = 0; i < NOPS; i++) {
    buf[k + 24 + 8 * i] = 1; // smux version 1
    buf[k + 25 + 8 * i] = 3; // NOP
  }
  return buf.subarray(0, crypt.seal(buf, buf.length));
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const port = s.address().port;
  s.close();
  return port;
}

/** Sends the PUSH every 100 ms (the server may still be starting) until a datagram comes back; 5 s at most. */
async function exchange(sock: Socket, port: number, crypt: DatagramCrypt): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    let tries = 0;
    const send = (): void => {
      if (++tries > 50) {
        clearInterval(timer);
        reject(new Error('kcptun-server never answered'));
        return;
      }
      sock.send(pushDatagram(crypt), port, '127.0.0.1');
    };
    const timer = setInterval(send, 100);
    sock.once('message', (msg) => {
      clearInterval(timer);
      resolve(new Uint8Array(msg));
    });
    send();
  });
}

describe('kcptun-server accepts our datagrams and we open its answers', { skip: !existsSync(SERVER) }, () => {
  const pass = deriveKcptunKey(KEY);
  for (const name of CIPHERS) {
    it(name, async (t) => {
      const port = await freeUdpPort();
      const server: ChildProcess = spawn(
        SERVER,
        ['-l', `127.0.0.1:${port}`, '-t', '127.0.0.1:9', '--key', KEY, '--crypt', name, '--nocomp', '--quiet'],
        { stdio: 'ignore' },
      );
      const sock = createSocket('udp4');
      t.after(() => {
        server.kill();
        sock.close();
      });
      sock.bind(0, '127.0.0.1');
      await once(sock, 'listening');

      const tx = newDatagramCrypt(name, pass);
      const rx = newDatagramCrypt(name, pass);
      assert.equal(tx.fellBack, false);
      const reply = await exchange(sock, port, tx);
      const off = rx.open(reply, reply.length);
      assert.equal(off, 20, 'the server\'s datagram must pass our CRC check');
      const v = new DataView(reply.buffer, reply.byteOffset);
      assert.equal(v.getUint16(off + 4, true), 0xf1, 'FEC data shard');
      const k = off + 8;
      assert.equal(v.getUint32(k, true), CONV);
      assert.equal(reply[k + 4], 82, 'an ACK');
      assert.equal(v.getUint32(k + 12, true), 0, 'for sn 0');
    });
  }
});
