/**
 * Garbage into a kcptun session never throws: it is counted and dropped, and the session still works.
 * Three kinds: random bytes (fail the CRC or are too short), correctly sealed datagrams with random
 * contents (pass the CRC, then fail in FEC/KCP/snappy/smux), and sealed datagrams with valid-looking
 * KCP headers but wrong conv, bad lengths or unknown commands.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveKcptunKey } from '../../daemon/transport/crypt/kdf.js';
import { newDatagramCrypt } from '../../daemon/transport/crypt/datagram.js';
import { KcptunSession, type KcptunSessionConfig } from '../../daemon/transport/session/kcptun-session.js';
import { newSnmp } from '../../daemon/transport/session/snmp.js';
import { peekConvSn } from '../../daemon/transport/session/route.js';
import { Rng } from './world.js';

const PASS = deriveKcptunKey('garbage');
const CONV = 0x01020304;

function config(role: 'client' | 'server', crypt: string): KcptunSessionConfig {
  return {
    conv: CONV, crypt: newDatagramCrypt(crypt, PASS), dataShards: 10, parityShards: 3, mtu: 1350,
    sndWnd: 128, rcvWnd: 512, nodelay: 1, interval: 10, resend: 2, nc: 1, ackNoDelay: false,
    compress: true, role, smux: {},
  };
}

/** Moves datagrams between two sessions on a 5 ms tick until `done` holds (bounded). */
function exchange(a: KcptunSession, b: KcptunSession, clock: { now: number }, done: () => boolean): boolean {
  for (let i = 0; i < 20_000 && !done(); i++) {
    clock.now += 5;
    for (const [from, to] of [[a, b], [b, a]] as const) {
      if (clock.now >= from.pollTimeout()) from.handleTimeout(clock.now);
      from.pump(clock.now);
      for (let d = from.pollTransmit(); d !== null; d = from.pollTransmit()) to.input(d, clock.now);
      to.pump(clock.now);
    }
  }
  return done();
}

for (const crypt of ['aes', 'none', 'xor']) {
  test(`garbage datagrams are counted and dropped, never thrown (crypt ${crypt})`, () => {
    const rng = new Rng(crypt.length * 7919);
    const snmp = newSnmp();
    const client = new KcptunSession(config('client', crypt), newSnmp(), 0);
    const server = new KcptunSession(config('server', crypt), snmp, 0);
    const sealer = newDatagramCrypt(crypt, PASS);
    const clock = { now: 0 };

    // 1. Random bytes of every length: all fail the CRC (or are too short) and change nothing.
    for (let n = 0; n <= 1500; n += 3) server.input(rng.bytes(n), clock.now);
    assert.ok(snmp.InCsumErrors + snmp.InErrs >= 500, JSON.stringify(snmp));
    assert.equal(snmp.InPkts, 0);
    const sid = client.openStream();
    assert.equal(typeof sid, 'number');
    const payload = rng.bytes(100_000);
    let written = 0;
    let got = 0;
    const ok = exchange(client, server, clock, () => {
      if (written < payload.length) written += client.streamWrite(sid as number, payload.subarray(written));
      for (let e = server.pollEvent(); e !== null; e = server.pollEvent()) void e;
      for (let d = server.streamRead(sid as number); d !== null; d = server.streamRead(sid as number)) got += d.length;
      return got === payload.length;
    });
    assert.ok(ok, `transfer after unauthenticated garbage: ${got}/${payload.length}`);

    // 2. Sealed datagrams with random contents, and 3. sealed KCP-looking ones (right or wrong conv,
    // any command, any length). They pass the CRC, so only the layers behind it can refuse them;
    // the session may end with a protocol error, but nothing throws.
    const inBefore = snmp.InPkts;
    const route = { conv: 0, sn: 0 };
    for (let i = 0; i < 3000; i++) {
      const n = 20 + rng.int(1330);
      const buf = rng.bytes(n);
      if (i % 2 === 1 && n >= 20 + 24) {
        const o = 20;
        const view = new DataView(buf.buffer, buf.byteOffset);
        view.setUint32(o, rng.chance(0.5) ? CONV : rng.next(), true);
        buf[o + 4] = rng.pick([81, 82, 83, 84, 85, 0]);
        view.setUint32(o + 20, rng.chance(0.5) ? rng.int(n) : rng.next(), true);
      }
      sealer.seal(buf, n);
      server.input(buf, clock.now);
      server.pump(clock.now);
      for (let e = server.pollEvent(); e !== null; e = server.pollEvent()) void e;
      // The listener's peek must cope with the same bytes.
      peekConvSn(buf, 20, n, route);
    }
    assert.equal(snmp.InPkts - inBefore, 3000, 'sealed garbage passed the CRC');
    assert.ok(snmp.KCPInErrors > 0, 'and was refused by KCP');
  });
}
