import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32Ieee, crc32c } from '../../../daemon/transport/checksum/crc32.js';

const ascii = (s: string) => new TextEncoder().encode(s);

test('CRC-32/IEEE check value and sub-range', () => {
  assert.equal(crc32Ieee(ascii('123456789')), 0xcbf43926);
  const padded = ascii('xx123456789yyyyyyyyyyy');
  assert.equal(crc32Ieee(padded, 2, 11), 0xcbf43926);
  assert.equal(crc32Ieee(new Uint8Array(0)), 0);
});

test('CRC-32C check value, long input agrees with byte-at-a-time', () => {
  assert.equal(crc32c(ascii('123456789')), 0xe3069283);
  const long = new Uint8Array(1000).map((_, i) => (i * 31 + 7) & 0xff);
  let ref = 0xffffffff;
  for (const b of long) {
    ref ^= b;
    for (let k = 0; k < 8; k++) ref = ref & 1 ? (ref >>> 1) ^ 0x82f63b78 : ref >>> 1;
  }
  assert.equal(crc32c(long), (ref ^ 0xffffffff) >>> 0);
});
