/*
 * CRC-32/IEEE (kcp-go's datagram checksum) and CRC-32C (snappy framing's), slicing-by-8; CRC-32C uses
 * the SSE4.2 instruction where the CPU has it. The same sums as daemon/transport/checksum/crc32.ts.
 *
 * JS API: crc32(buf, start, end, castagnoli: boolean) -> u32 over buf[start, end).
 */
#include <string.h>

#include "addon.h"

static uint32_t ieee[8][256], castagnoli[8][256];
static int have_sse42;

static void make_tables(uint32_t t[8][256], uint32_t poly) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ poly : c >> 1;
    t[0][i] = c;
  }
  for (int s = 1; s < 8; s++)
    for (int i = 0; i < 256; i++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
}

void crc32_init(void) {
  make_tables(ieee, 0xedb88320u);
  make_tables(castagnoli, 0x82f63b78u);
#if defined(__x86_64__)
  __builtin_cpu_init();
  have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t sliced(uint32_t t[8][256], const uint8_t *p, size_t n) {
  uint32_t crc = 0xffffffffu;
  for (; n >= 8; p += 8, n -= 8) {
    uint32_t a, b;
    memcpy(&a, p, 4); /* little-endian hosts (x86-64, arm64) */
    memcpy(&b, p + 4, 4);
    a ^= crc;
    crc = t[7][a & 0xff] ^ t[6][(a >> 8) & 0xff] ^ t[5][(a >> 16) & 0xff] ^ t[4][a >> 24] ^
          t[3][b & 0xff] ^ t[2][(b >> 8) & 0xff] ^ t[1][(b >> 16) & 0xff] ^ t[0][b >> 24];
  }
  while (n--) crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t castagnoli_hw(const uint8_t *p, size_t n) {
  uint64_t crc = 0xffffffffu;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    crc = __builtin_ia32_crc32di(crc, v);
  }
  uint32_t c = (uint32_t)crc;
  while (n--) c = __builtin_ia32_crc32qi(c, *p++);
  return c ^ 0xffffffffu;
}
#endif

uint32_t crc32_ieee(const uint8_t *p, size_t n) {
  return sliced(ieee, p, n);
}

uint32_t crc32_castagnoli(const uint8_t *p, size_t n) {
#if defined(__x86_64__)
  if (have_sse42) return castagnoli_hw(p, n);
#endif
  return sliced(castagnoli, p, n);
}

napi_value js_crc32(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  uint32_t start, end;
  bool c;
  if (!args_of(env, info, 4, argv)) return NULL;
  NAPI_CHECK(env, napi_get_value_uint32(env, argv[1], &start));
  NAPI_CHECK(env, napi_get_value_uint32(env, argv[2], &end));
  NAPI_CHECK(env, napi_get_value_bool(env, argv[3], &c));
  uint8_t *p = span_of(env, argv[0], start, end, "crc32: [start, end) outside the buffer");
  if (!p) return NULL;
  uint32_t sum = c ? crc32_castagnoli(p + start, end - start) : crc32_ieee(p + start, end - start);
  NAPI_CHECK(env, napi_create_uint32(env, sum, &result));
  return result;
}
