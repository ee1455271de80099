/**
 * Micro-benchmark of the kcptun datagram layers: seal+open per cipher, the ways to
 * drive OpenSSL's AES-CFB, and FEC (10,3) encode/decode. 1350-byte datagrams (kcptun's MTU).
 * Run: npx tsc -p tsconfig.json && node dist/bench/crypt-fec.js
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { newDatagramCrypt } from '../daemon/transport/crypt/datagram.js';
import { deriveKcptunKey } from '../daemon/transport/crypt/kdf.js';
import { KCP_IV } from '../daemon/transport/crypt/types.js';
import { FecDecoder } from '../daemon/transport/fec/decoder.js';
import { FecEncoder } from '../daemon/transport/fec/encoder.js';

const MTU = 1350;
const pass = deriveKcptunKey('bench');

/** Best of five runs (the machine is shared: the minimum is the least disturbed). */
function measure(name: string, packets: number, fn: () => void): void {
  for (let i = 0; i < Math.min(2000, packets); i++) fn(); // warm up the JIT
  let best = Infinity;
  for (let run = 0; run < 5; run++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < packets / 5; i++) fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / (packets / 5));
  }
  const mbps = (MTU * 8) / best / 1e-3;
  console.log(`${name.padEnd(48)} ${(best / 1000).toFixed(2).padStart(7)} µs/datagram ${mbps.toFixed(0).padStart(6)} Mbit/s`);
}

const buf = new Uint8Array(MTU + 16);
for (let i = 0; i < buf.length; i++) buf[i] = i * 7;

console.log('-- seal + open, one datagram each --');
for (const name of ['aes', 'aes-128', 'sm4', '3des', 'salsa20', 'blowfish', 'twofish', 'cast5', 'tea', 'xtea', 'xor', 'none', 'null', 'aes-128-gcm']) {
  const tx = newDatagramCrypt(name, pass);
  const rx = newDatagramCrypt(name, pass);
  const slow = ['3des', 'blowfish', 'twofish', 'cast5', 'tea', 'xtea'].includes(name);
  measure(name, slow ? 5000 : 50000, () => {
    const n = tx.seal(buf, MTU - tx.tailroom);
    if (rx.open(buf, n) < 0) throw new Error(`${name}: open failed`);
  });
}

console.log('-- AES-256-CFB decrypt of one datagram, three ways --');
const ct = new Uint8Array(MTU);
const longLived = createDecipheriv('aes-256-cfb', pass, KCP_IV);
measure('long-lived decipher (used)', 50000, () => {
  ct.set(longLived.update(ct));
});
measure('createDecipheriv per datagram', 50000, () => {
  ct.set(createDecipheriv('aes-256-cfb', pass, KCP_IV).update(ct));
});
const ecb = createCipheriv('aes-256-ecb', pass, null).setAutoPadding(false);
const scratch = new Uint8Array(MTU + 16);
measure('one ECB pass over [IV, c0..] + JS XOR', 50000, () => {
  const blocks = Math.ceil(MTU / 16);
  scratch.set(KCP_IV, 0);
  scratch.set(ct.subarray(0, (blocks - 1) * 16), 16);
  const ks = ecb.update(scratch.subarray(0, blocks * 16));
  for (let i = 0; i < MTU; i++) ct[i] ^= ks[i];
});

console.log('-- FEC (10,3) --');
const enc = new FecEncoder({ dataShards: 10, parityShards: 3, headerOffset: 20, maxDatagram: 1500 });
const data = new Uint8Array(MTU);
measure('encode (parity accumulated per data shard)', 50000, () => {
  enc.encode(data, MTU, 0);
});
// Decode: a pre-encoded stream of 13-shard groups with one data shard lost per group.
const groups: Uint8Array[][] = [];
const enc2 = new FecEncoder({ dataShards: 10, parityShards: 3, headerOffset: 20, maxDatagram: 1500 });
for (let g = 0; g < 20; g++) {
  const group: Uint8Array[] = [];
  for (let i = 0; i < 10; i++) {
    const d = new Uint8Array(MTU);
    d.fill(g + i, 28);
    const parity = enc2.encode(d, MTU, 0);
    if (i !== 4) group.push(d);
    for (const p of parity) group.push(p.slice());
  }
  groups.push(group);
}
let dec = new FecDecoder({ dataShards: 10, parityShards: 3 });
let gi = 0;
let si = 0;
measure('decode, 1 data loss per group (per datagram in)', 50000, () => {
  if (si === groups[gi].length) {
    si = 0;
    if (++gi === groups.length) {
      gi = 0;
      dec = new FecDecoder({ dataShards: 10, parityShards: 3 });
    }
  }
  const d = groups[gi][si++];
  dec.input(d, 20, d.length);
  while (dec.pollRecovered() !== undefined);
});
