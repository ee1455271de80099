/* Multi-datagram AES-NI CFB encryption (see cfb_lanes.c). */
#ifndef TSTIER_CFB_LANES_H
#define TSTIER_CFB_LANES_H
#include <stddef.h>
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
typedef struct {
  __m128i rk[15];
  int rounds;
} aes_lanes_key_t;
#else
typedef struct {
  int rounds;
} aes_lanes_key_t;
#endif

/* The CPU has AES-NI (and SSE4.1). */
int aes_lanes_available(void);
/* Expands a 16- or 32-byte key; 0 for other lengths. */
int aes_lanes_key(aes_lanes_key_t *k, const uint8_t *key, size_t key_len);
/* Full-block CFB encryption from iv over each bufs[i][0, lens[i]) in place. */
void aes_lanes_cfb_encrypt(const aes_lanes_key_t *k, const uint8_t iv[16], uint8_t *const *bufs, const uint32_t *lens, size_t n);
#endif
