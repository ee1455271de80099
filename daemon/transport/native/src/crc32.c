/*
 * CRC-32/IEEE (kcp-go's datagram checksum) and CRC-32C (snappy framing's), slicing-by-8; CRC-32C uses
 * the SSE4.2 instruction where the CPU has it, CRC-32/IEEE carry-less multiplication (PCLMULQDQ
 * folding, as Go's crc32 package does for kcp-go): slicing-by-8 was a third of each datagram's
 * seal or open, ~7 % of a busy tstier-kcptun's CPU. The same sums as daemon/transport/checksum/crc32.ts.
 *
 * JS API: crc32(buf, start, end, castagnoli: boolean) -> u32 over buf[start, end).
 */
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "addon.h"

static uint32_t ieee[8][256], castagnoli[8][256];
static int have_sse42, have_clmul;

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
  have_clmul = have_sse42 && __builtin_cpu_supports("pclmul");
#endif
}

/* Continues a CRC whose register (pre-inversion) is `crc`; returns the register, not yet inverted. */
static uint32_t sliced_update(uint32_t t[8][256], uint32_t crc, const uint8_t *p, size_t n) {
  for (; n >= 8; p += 8, n -= 8) {
    uint32_t a, b;
    memcpy(&a, p, 4); /* little-endian hosts (x86-64, arm64) */
    memcpy(&b, p + 4, 4);
    a ^= crc;
    crc = t[7][a & 0xff] ^ t[6][(a >> 8) & 0xff] ^ t[5][(a >> 16) & 0xff] ^ t[4][a >> 24] ^
          t[3][b & 0xff] ^ t[2][(b >> 8) & 0xff] ^ t[1][(b >> 16) & 0xff] ^ t[0][b >> 24];
  }
  while (n--) crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

static uint32_t sliced(uint32_t t[8][256], const uint8_t *p, size_t n) {
  return sliced_update(t, 0xffffffffu, p, n) ^ 0xffffffffu;
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

#if defined(__x86_64__)
/*
 * The CRC register over p[0, n) (n >= 64, a multiple of 16), from `crc`: four 128-bit lanes folded
 * 64 bytes at a time, folded into one, then reduced to 32 bits (Barrett). The constants are powers of
 * x modulo the bit-reflected IEEE polynomial (Intel's "Fast CRC Computation Using PCLMULQDQ", as in
 * zlib and Go): k1/k2 fold by 512 bits, k3/k4 by 128, k5 by 64; then P(x) and floor(x^64 / P(x)).
 */
__attribute__((target("pclmul,sse4.1"))) static uint32_t ieee_clmul(uint32_t crc, const uint8_t *p, size_t n) {
  const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4);
  const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
  const __m128i k5 = _mm_set_epi64x(0, 0x0163cd6124);
  const __m128i poly = _mm_set_epi64x(0x01f7011641, 0x01db710641);
  const __m128i low32 = _mm_setr_epi32(~0, 0, ~0, 0);
  __m128i x1 = _mm_loadu_si128((const __m128i *)(p + 0x00));
  __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 0x10));
  __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 0x20));
  __m128i x4 = _mm_loadu_si128((const __m128i *)(p + 0x30));
  x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
  p += 64;
  n -= 64;
  for (; n >= 64; p += 64, n -= 64) {
    __m128i y1 = _mm_clmulepi64_si128(x1, k1k2, 0x00), y2 = _mm_clmulepi64_si128(x2, k1k2, 0x00);
    __m128i y3 = _mm_clmulepi64_si128(x3, k1k2, 0x00), y4 = _mm_clmulepi64_si128(x4, k1k2, 0x00);
    x1 = _mm_clmulepi64_si128(x1, k1k2, 0x11);
    x2 = _mm_clmulepi64_si128(x2, k1k2, 0x11);
    x3 = _mm_clmulepi64_si128(x3, k1k2, 0x11);
    x4 = _mm_clmulepi64_si128(x4, k1k2, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, y1), _mm_loadu_si128((const __m128i *)(p + 0x00)));
    x2 = _mm_xor_si128(_mm_xor_si128(x2, y2), _mm_loadu_si128((const __m128i *)(p + 0x10)));
    x3 = _mm_xor_si128(_mm_xor_si128(x3, y3), _mm_loadu_si128((const __m128i *)(p + 0x20)));
    x4 = _mm_xor_si128(_mm_xor_si128(x4, y4), _mm_loadu_si128((const __m128i *)(p + 0x30)));
  }
  /* Four lanes into one, then 16 bytes at a time. */
  __m128i lanes[3] = {x2, x3, x4};
  for (int i = 0; i < 3; i++) {
    __m128i y = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), lanes[i]), y);
  }
  for (; n >= 16; p += 16, n -= 16) {
    __m128i y = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), _mm_loadu_si128((const __m128i *)p)), y);
  }
  /* 128 bits to 64. */
  __m128i y = _mm_clmulepi64_si128(x1, k3k4, 0x10);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), y);
  y = _mm_srli_si128(x1, 4);
  x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, low32), k5, 0x00), y);
  /* Barrett reduction to 32 bits. */
  y = _mm_clmulepi64_si128(_mm_and_si128(x1, low32), poly, 0x10);
  y = _mm_clmulepi64_si128(_mm_and_si128(y, low32), poly, 0x00);
  return (uint32_t)_mm_extract_epi32(_mm_xor_si128(x1, y), 1);
}
#endif

uint32_t crc32_ieee(const uint8_t *p, size_t n) {
#if defined(__x86_64__)
  if (have_clmul && n >= 64) {
    size_t bulk = n & ~(size_t)15;
    uint32_t crc = ieee_clmul(0xffffffffu, p, bulk);
    return sliced_update(ieee, crc, p + bulk, n - bulk) ^ 0xffffffffu;
  }
#endif
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
