/**
 * Interop of the datagram layers with the real kcptun 2021 server (Debian's kcptun-server):
 * - every cipher: we seal a datagram carrying a KCP PUSH (a few smux NOP frames); the server
 *   must accept it (its CRC/decryption holds) and answer with an ACK that we open and parse;
 * - FEC (10,3): the server rebuilds a PUSH we never sent from our parity, and we rebuild one
 *   of its datagrams from its parity.
 * Loopback only; skipped when kcptun-server is not installed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { describe, it, type TestContext } from 'node:test';
import { newDatagramCrypt, type DatagramCrypt } from '../../../daemon/transport/crypt/datagram.js';
import { deriveKcptunKey } from '../../../daemon/transport/crypt/kdf.js';
import { FecDecoder } from '../../../daemon/transport/fec/decoder.js';
import { FecEncoder } from '../../../daemon/transport/fec/encoder.js';

const SERVER = '/usr/bin/kcptun-server';
const CIPHERS = ['aes', 'aes-128', 'aes-192', 'salsa20', 'blowfish', 'twofish', 'cast5', '3des', 'tea', 'xtea', 'xor', 'sm4', 'none'];
const KEY = 'testkey';
const NOPS = 40; // 320 bytes of payload: several cipher blocks and several Salsa20 blocks
const CONV = 0x1234abcd;

/** crypto header room | FEC header room | KCP PUSH `sn` carrying NOP frames (smux v1, sid 0). */
function pushFrame(headerSize: number, sn: number): Uint8Array {
  const kcpLen = 24 + 8 * NOPS;
  const buf = new Uint8Array(headerSize + 8 + kcpLen);
  const v = new DataView(buf.buffer);
  const k = headerSize + 8;
  v.setUint32(k, CONV, true);
  buf[k + 4] = 81; // PUSH
  v.setUint16(k + 6, 128, true); // wnd
  v.setUint32(k + 12, sn, true);
  v.setUint32(k + 20, 8 * NOPS, true);
  for (let i = 0; i < NOPS; i++) {
    buf[k + 24 + 8 * i] = 1; // smux version 1
    buf[k + 25 + 8 * i] = 3; // NOP
  }
  return buf;
}

/** The PUSH sn 0 as FEC data shard seqid 0, sealed. */
function pushDatagram(crypt: DatagramCrypt): Uint8Array {
  const buf = pushFrame(crypt.headerSize, 0);
  const v = new DataView(buf.buffer);
  v.setUint16(crypt.headerSize + 4, 0xf1, true);
  v.setUint16(crypt.headerSize + 6, buf.length - crypt.headerSize - 6, true);
  return buf.subarray(0, crypt.seal(buf, buf.length));
}

/** A kcptun-server on a free loopback port and a UDP socket to talk to it; both end with the test. */
async function startServer(t: TestContext, crypt: string): Promise<{ port: number; sock: Socket }> {
  const port = await freeUdpPort();
  const server: ChildProcess = spawn(
    SERVER,
    ['-l', `127.0.0.1:${port}`, '-t', '127.0.0.1:9', '--key', KEY, '--crypt', crypt, '--nocomp', '--quiet'],
    { stdio: 'ignore' },
  );
  const sock = createSocket('udp4');
  t.after(() => {
    server.kill();
    sock.close();
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  return { port, sock };
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
      const { port, sock } = await startServer(t, name);

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

/** The KCP ACK sns found in a KCP packet (segments laid end to end). */
function ackedSns(kcp: Uint8Array): number[] {
  const v = new DataView(kcp.buffer, kcp.byteOffset, kcp.length);
  const sns: number[] = [];
  for (let o = 0; o + 24 <= kcp.length; o += 24 + v.getUint32(o + 20, true)) if (kcp[o + 4] === 82) sns.push(v.getUint32(o + 12, true));
  return sns;
}

describe('FEC (10,3) against kcptun-server', { skip: !existsSync(SERVER) }, () => {
  it('the server rebuilds a PUSH we never sent; we rebuild a datagram of its from its parity', async (t) => {
    const pass = deriveKcptunKey(KEY);
    const { port, sock } = await startServer(t, 'aes');
    const tx = newDatagramCrypt('aes', pass);
    const rx = newDatagramCrypt('aes', pass);
    const enc = new FecEncoder({ dataShards: 10, parityShards: 3, headerOffset: 20, maxDatagram: 1500 });

    // Everything the server sends, opened; and the sns it has acknowledged so far.
    const received = new Map<number, Uint8Array>(); // FEC seqid -> payload after the crypto header
    const acked = new Set<number>();
    let una = 0; // the server's rcv_nxt, from its segments' una field
    let wake: (() => void) | undefined;
    sock.on('message', (msg) => {
      const d = new Uint8Array(msg);
      if (rx.open(d, d.length) !== 20) return;
      const payload = d.subarray(20);
      const view = new DataView(payload.buffer, payload.byteOffset);
      received.set(view.getUint32(0, true), payload);
      if (view.getUint16(4, true) === 0xf1 && payload.length >= 8 + 24) {
        for (const sn of ackedSns(payload.subarray(8))) acked.add(sn);
        una = Math.max(una, view.getUint32(8 + 16, true));
      }
      wake?.();
    });
    const until = async (cond: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 5000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 100); // re-check now and then; woken early by any datagram
        });
      }
    };
    const send = (buf: Uint8Array): void => {
      sock.send(buf.subarray(0, tx.seal(buf, buf.length)), port, '127.0.0.1');
    };

    // Wait for the server to listen: its answer to FEC seqid 0 / sn 0, which is byte for byte
    // what the encoder below produces first (so the server's FEC group 0 stays consistent).
    await exchange(sock, port, tx);
    // Lockstep: one PUSH, then its ACK (so each server flush is its own datagram, i.e. its own shard).
    // sn 3 is encoded (it is part of our parity) but never sent.
    const LOST = 3;
    for (let sn = 0; sn < 16; sn++) {
      const frame = pushFrame(20, sn);
      const parity = enc.encode(frame, frame.length, 0);
      if (sn !== LOST) {
        send(frame);
        await until(() => acked.has(sn), `ACK of sn ${sn}`);
      }
      for (const p of parity) send(p.slice());
    }
    // sn 3 never went out, so only our parity can have delivered it: the server's una passing 3
    // proves it holds sn 3. (Its ACK of sn 3 itself may be filtered:
    // kcp-go skips ACKs below rcv_nxt unless last in the flush.)
    await until(() => una > LOST, 'the server to rebuild sn 3 from our parity');

    // The server's first group (data seqids 0..9, parity 10..12): drop its data shard 1, rebuild it.
    await until(() => [...Array(13).keys()].every((s) => received.has(s)), "the server's first FEC group");
    const dec = new FecDecoder({ dataShards: 10, parityShards: 3 });
    const rebuilt: Uint8Array[] = [];
    for (let s = 0; s < 13; s++) {
      if (s === 1) continue;
      const p = received.get(s) as Uint8Array;
      dec.input(p, 0, p.length);
      for (let r = dec.pollRecovered(); r !== undefined; r = dec.pollRecovered()) rebuilt.push(r.slice());
    }
    assert.equal(rebuilt.length, 1);
    assert.deepEqual(rebuilt[0], (received.get(1) as Uint8Array).subarray(8));
  });
});
