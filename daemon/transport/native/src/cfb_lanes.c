/*
 * CFB encryption of many datagrams at once with AES-NI (aes-128 and aes-256, kcptun's "aes-128" and
 * "aes"). CFB encryption is a chain: each block's keystream is the encryption of the ciphertext
 * block before it, so one datagram keeps AES-NI waiting on each round's latency (OpenSSL's CFB ran
 * at one block per ~14 dependent instructions, ~10 % of a busy tstier-kcptun's CPU). Eight chains,
 * one datagram each, advance together: their rounds are independent and fill the unit's pipeline.
 * A lane whose datagram ends takes the next one. The bytes are exactly single-chain CFB's.
 *
 * The key schedule is FIPS-197's, built with AESKEYGENASSIST (Intel's AES-NI white paper); cfb.c
 * checks it against OpenSSL's ECB on a block before using it.
 */
#include <string.h>

#include "cfb_lanes.h"

#if defined(__x86_64__)
#define LANES 8

int aes_lanes_available(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
}

/* One step of the 128-bit schedule (and the first half of the 256-bit one): w ^= w<<32 ^ w<<64 ^ w<<96 ^ assist. */
__attribute__((target("aes,sse4.1"))) static __m128i spread(__m128i w, __m128i assist) {
  w = _mm_xor_si128(w, _mm_slli_si128(w, 4));
  w = _mm_xor_si128(w, _mm_slli_si128(w, 4));
  w = _mm_xor_si128(w, _mm_slli_si128(w, 4));
  return _mm_xor_si128(w, assist);
}

/* AESKEYGENASSIST takes its round constant as an immediate, hence macros. */
#define STEP128(i, rcon) k->rk[i] = a = spread(a, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(a, rcon), 0xff))
#define STEP256(i, rcon)                                                                  \
  do {                                                                                    \
    k->rk[i] = a = spread(a, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(b, rcon), 0xff)); \
    if ((i) + 1 <= 14) k->rk[(i) + 1] = b = spread(b, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(a, 0), 0xaa)); \
  } while (0)

__attribute__((target("aes,sse4.1"))) int aes_lanes_key(aes_lanes_key_t *k, const uint8_t *key, size_t key_len) {
  __m128i a = _mm_loadu_si128((const __m128i *)key), b;
  k->rk[0] = a;
  if (key_len == 16) {
    STEP128(1, 0x01); STEP128(2, 0x02); STEP128(3, 0x04); STEP128(4, 0x08); STEP128(5, 0x10);
    STEP128(6, 0x20); STEP128(7, 0x40); STEP128(8, 0x80); STEP128(9, 0x1b); STEP128(10, 0x36);
    k->rounds = 10;
    return 1;
  }
  if (key_len == 32) {
    k->rk[1] = b = _mm_loadu_si128((const __m128i *)(key + 16));
    STEP256(2, 0x01); STEP256(4, 0x02); STEP256(6, 0x04); STEP256(8, 0x08);
    STEP256(10, 0x10); STEP256(12, 0x20); STEP256(14, 0x40);
    k->rounds = 14;
    return 1;
  }
  return 0;
}

__attribute__((target("aes,sse4.1"))) void aes_lanes_cfb_encrypt(const aes_lanes_key_t *k, const uint8_t iv[16],
                                                                   uint8_t *const *bufs, const uint32_t *lens, size_t n) {
  const __m128i first = _mm_loadu_si128((const __m128i *)iv);
  const int rounds = k->rounds;
  uint8_t *p[LANES];
  uint32_t left[LANES];
  __m128i feedback[LANES], x[LANES];
  size_t next = 0;
  for (int j = 0; j < LANES; j++) {
    p[j] = NULL;
    left[j] = 0;
    feedback[j] = first;
  }
  for (;;) {
    int active = 0;
    for (int j = 0; j < LANES; j++) {
      while (left[j] == 0 && next < n) {
        p[j] = bufs[next];
        left[j] = lens[next++];
        feedback[j] = first;
      }
      active |= left[j] != 0;
    }
    if (!active) return;
    /* Idle lanes (the queue ran dry) compute a block nobody stores: cheaper than branching per round. */
    for (int j = 0; j < LANES; j++) x[j] = _mm_xor_si128(feedback[j], k->rk[0]);
    for (int r = 1; r < rounds; r++) {
      const __m128i rk = k->rk[r];
      for (int j = 0; j < LANES; j++) x[j] = _mm_aesenc_si128(x[j], rk);
    }
    for (int j = 0; j < LANES; j++) x[j] = _mm_aesenclast_si128(x[j], k->rk[rounds]);
    for (int j = 0; j < LANES; j++) {
      if (left[j] >= 16) {
        const __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p[j]), x[j]);
        _mm_storeu_si128((__m128i *)p[j], c);
        feedback[j] = c;
        p[j] += 16;
        left[j] -= 16;
      } else if (left[j] > 0) { /* the last, partial block: its first bytes of keystream */
        uint8_t ks[16];
        _mm_storeu_si128((__m128i *)ks, x[j]);
        for (uint32_t i = 0; i < left[j]; i++) p[j][i] ^= ks[i];
        left[j] = 0;
      }
    }
  }
}
#else
int aes_lanes_available(void) { return 0; }
int aes_lanes_key(aes_lanes_key_t *k, const uint8_t *key, size_t key_len) {
  (void)k; (void)key; (void)key_len;
  return 0;
}
void aes_lanes_cfb_encrypt(const aes_lanes_key_t *k, const uint8_t iv[16], uint8_t *const *bufs, const uint32_t *lens, size_t n) {
  (void)k; (void)iv; (void)bufs; (void)lens; (void)n;
}
#endif
