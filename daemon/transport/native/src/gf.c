/*
 * GF(2^8) multiply-add for Reed-Solomon (klauspost/reedsolomon's field: polynomial 0x11D, generator 2;
 * daemon/transport/fec/galois.ts is the reference): dst[j] ^= c * src[j]. FEC encode runs it once per
 * parity shard for every data shard, decode once per present shard for every rebuilt one. With AVX2 it
 * takes 32 bytes per step through two 16-entry product tables (low and high nibble, one shuffle each),
 * the method of klauspost/reedsolomon's assembly; elsewhere one table lookup per byte.
 *
 * JS API (registered by addon.c):
 *   gfMulAdd(c, src, sOff, dst, dOff, n)             dst[dOff + j] ^= c * src[sOff + j], j < n
 *   gfMulAddRows(coeffs, src, sOff, n, dst, dOff, stride)
 *       the same for each k < coeffs.length into dst[dOff + k * stride ...]: one call per data shard
 *       accumulates every parity shard.
 */
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "addon.h"

static uint8_t mul_table[256][256];
static int have_avx2;

void gf_init(void) {
  uint8_t exp[510], log[256] = {0};
  unsigned x = 1;
  for (int i = 0; i < 255; i++) {
    exp[i] = exp[i + 255] = (uint8_t)x;
    log[x] = (uint8_t)i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (int a = 1; a < 256; a++)
    for (int b = 1; b < 256; b++) mul_table[a][b] = exp[log[a] + log[b]];
#if defined(__x86_64__)
  __builtin_cpu_init();
  have_avx2 = __builtin_cpu_supports("avx2");
#endif
}

#if defined(__x86_64__)
/* Does the whole multiple of 32 bytes; returns how many bytes it did. */
__attribute__((target("avx2"))) static size_t mul_add_avx2(uint8_t c, const uint8_t *src, uint8_t *dst, size_t n) {
  uint8_t lo[16], hi[16];
  for (int i = 0; i < 16; i++) {
    lo[i] = mul_table[c][i];
    hi[i] = mul_table[c][i << 4];
  }
  const __m256i tlo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lo));
  const __m256i thi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)hi));
  const __m256i mask = _mm256_set1_epi8(0x0f);
  size_t j = 0;
  for (; j + 32 <= n; j += 32) {
    __m256i v = _mm256_loadu_si256((const __m256i *)(src + j));
    __m256i l = _mm256_shuffle_epi8(tlo, _mm256_and_si256(v, mask));
    __m256i h = _mm256_shuffle_epi8(thi, _mm256_and_si256(_mm256_srli_epi64(v, 4), mask));
    __m256i d = _mm256_loadu_si256((const __m256i *)(dst + j));
    _mm256_storeu_si256((__m256i *)(dst + j), _mm256_xor_si256(d, _mm256_xor_si256(l, h)));
  }
  return j;
}
#endif

static void mul_add(uint8_t c, const uint8_t *src, uint8_t *dst, size_t n) {
  if (c == 0) return;
  size_t j = 0;
  if (c == 1) {
    for (; j < n; j++) dst[j] ^= src[j];
    return;
  }
#if defined(__x86_64__)
  if (have_avx2) j = mul_add_avx2(c, src, dst, n);
#endif
  const uint8_t *row = mul_table[c];
  for (; j < n; j++) dst[j] ^= row[src[j]];
}

napi_value js_gf_mul_add(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  uint32_t c, s_off, d_off, n;
  if (!args_of(env, info, 6, argv)) return NULL;
  NAPI_CHECK(env, napi_get_value_uint32(env, argv[0], &c));
  NAPI_CHECK(env, napi_get_value_uint32(env, argv[2], &s_off));
  NAPI_CHECK(env, napi_get_value_uint32(env, argv[4], &d_off));
  NAPI_CHECK(env, napi_get_value_uint32(env, argv[5], &n));
  if (c > 255 || s_off + n < s_off || d_off + n < d_off) return throw_msg(env, "EINVAL", "gfMulAdd: bad coefficient or span");
  uint8_t *src = span_of(env, argv[1], s_off, s_off + n, "gfMulAdd: source span outside its buffer");
  if (!src) return NULL;
  uint8_t *dst = span_of(env, argv[3], d_off, d_off + n, "gfMulAdd: destination span outside its buffer");
  if (!dst) return NULL;
  mul_add((uint8_t)c, src + s_off, dst + d_off, n);
  return NULL;
}

napi_value js_gf_mul_add_rows(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  uint32_t s_off, n, d_off, stride;
  uint8_t *coeffs;
  size_t rows;
  if (!args_of(env, info, 7, argv)) return NULL;
  if (!bytes_of(env, argv[0], &coeffs, &rows)) return throw_msg(env, "EINVAL", "gfMulAddRows: coeffs must be a Uint8Array");
  NAPI_CHECK(env, napi_get_value_uint32(env, argv[2], &s_off));
  NAPI_CHECK(env, napi_get_value_uint32(env, argv[3], &n));
  NAPI_CHECK(env, napi_get_value_uint32(env, argv[5], &d_off));
  NAPI_CHECK(env, napi_get_value_uint32(env, argv[6], &stride));
  uint64_t last = rows == 0 ? d_off : (uint64_t)d_off + (uint64_t)(rows - 1) * stride + n;
  if (s_off + n < s_off || last > UINT32_MAX) return throw_msg(env, "EINVAL", "gfMulAddRows: bad span");
  uint8_t *src = span_of(env, argv[1], s_off, s_off + n, "gfMulAddRows: source span outside its buffer");
  if (!src) return NULL;
  uint8_t *dst = span_of(env, argv[4], 0, (uint32_t)last, "gfMulAddRows: destination rows outside their buffer");
  if (!dst) return NULL;
  for (size_t k = 0; k < rows; k++) mul_add(coeffs[k], src + s_off, dst + d_off + k * stride, n);
  return NULL;
}
