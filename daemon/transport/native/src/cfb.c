/*
 * kcp-go's block-cipher datagram framing in one call per datagram (daemon/transport/crypt/datagram.ts
 * is the reference): [0,16) random nonce | [16,20) CRC-32/IEEE LE of [20,len) | payload, then full-block
 * CFB over the whole datagram from the fixed IV. Decryption reverses it and checks the CRC.
 *
 * Why: in JavaScript a datagram paid for a nonce copy, a table CRC, and node:crypto's update(), which
 * allocates its output and is copied back; here one OpenSSL context per direction keeps its expanded key
 * and is only re-armed with the fixed IV, and the bytes are worked on in place; decryption runs as one
 * ECB pass (see decrypt_parallel). The ciphers are
 * OpenSSL's (Node's own), so the bytes are what node:crypto gives for the same IV.
 *
 * JS API (registered by addon.c):
 *   cfbCreate(algorithm: 'aes-128-cfb' | 'aes-192-cfb' | 'aes-256-cfb' | 'sm4-cfb' | 'des-ede3-cfb',
 *             key: Uint8Array) -> handle; throws if OpenSSL lacks it or the key length is wrong
 *   cfbSeal(handle, buf, len)        nonce, CRC and cipher over buf[0, len) in place
 *   cfbSealMany(handle, bufs, count) cfbSeal of each bufs[i] (whole view), i < count; aes-128/256 run
 *                                    eight datagrams' CFB chains at once (cfb_lanes.c)
 *   cfbOpen(handle, buf, len) -> n   deciphers buf[0, len) in place; 20 (the payload's offset), -1 too
 *                                    short, -2 bad CRC
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "addon.h"
#include "cfb_lanes.h"

#define NONCE_SIZE 16
#define HEADER_SIZE 20
#define POOL_SIZE 4096
/* Datagrams handed to the lanes per call (a pass's worth; more just loops). */
#define SEAL_BATCH 64

static const uint8_t KCP_IV[16] = {0xa7, 0x73, 0x4f, 0x9c, 0x12, 0xac, 0x1b, 0x01,
                                   0xa4, 0x15, 0xf2, 0xc1, 0xfc, 0x78, 0xe6, 0x6b};

typedef struct {
  /* AES-NI round keys for cfbSealMany, when has_lanes (aes-128/256 on a CPU with AES-NI). */
  aes_lanes_key_t lanes;
  int has_lanes;
  EVP_CIPHER_CTX *enc, *dec;
  /* The same key in ECB, encrypting: CFB decryption's keystream in one pipelined pass (see open). */
  EVP_CIPHER_CTX *ecb;
  int block;
  /* [IV, c_0 .. c_(n-2)] for that pass, and the keystream it yields. */
  uint8_t shifted[1536], keystream[1536];
  /* Nonce material from OpenSSL's CSPRNG, drawn POOL_SIZE bytes at a time. */
  uint8_t pool[POOL_SIZE];
  size_t pool_pos;
} cfb_t;

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  cfb_t *c = data;
  EVP_CIPHER_CTX_free(c->enc);
  EVP_CIPHER_CTX_free(c->dec);
  EVP_CIPHER_CTX_free(c->ecb);
  free(c);
}

static EVP_CIPHER_CTX *context(const EVP_CIPHER *cipher, const uint8_t *key, int encrypt) {
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx && EVP_CipherInit_ex(ctx, cipher, NULL, key, KCP_IV, encrypt) == 1 && EVP_CIPHER_CTX_set_padding(ctx, 0) == 1)
    return ctx;
  EVP_CIPHER_CTX_free(ctx);
  return NULL;
}

/* The ECB twin of a "-cfb" name ("aes-256-cfb" -> "aes-256-ecb"), or NULL. */
static const EVP_CIPHER *ecb_of(const char *cfb_name) {
  char name[32];
  size_t n = strlen(cfb_name);
  if (n < 4 || n >= sizeof name) return NULL;
  memcpy(name, cfb_name, n - 3);
  memcpy(name + n - 3, "ecb", 4);
  return EVP_get_cipherbyname(name);
}

static int run(EVP_CIPHER_CTX *ctx, uint8_t *buf, uint32_t len);

/* The lanes' CFB equals OpenSSL's on a sample of odd lengths (else cfbSealMany runs OpenSSL's, one by one). */
static int lanes_agree(cfb_t *c) {
  uint8_t a[9][80], b[9][80];
  uint8_t *bufs[9];
  uint32_t lens[9];
  for (int i = 0; i < 9; i++) {
    for (int j = 0; j < 80; j++) a[i][j] = b[i][j] = (uint8_t)(i * 31 + j * 7);
    bufs[i] = a[i];
    lens[i] = (uint32_t)(80 - 9 * i);
    if (!run(c->enc, b[i], lens[i])) return 0;
  }
  aes_lanes_cfb_encrypt(&c->lanes, KCP_IV, bufs, lens, 9);
  return memcmp(a, b, sizeof a) == 0;
}

napi_value js_cfb_create(napi_env env, napi_callback_info info) {
  napi_value argv[2], handle;
  char name[32];
  size_t name_len, key_len;
  uint8_t *key;
  if (!args_of(env, info, 2, argv)) return NULL;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok || !bytes_of(env, argv[1], &key, &key_len))
    return throw_msg(env, "EINVAL", "cfbCreate(algorithm, key)");
  static const char *const allowed[] = {"aes-128-cfb", "aes-192-cfb", "aes-256-cfb", "sm4-cfb", "des-ede3-cfb"};
  const EVP_CIPHER *cipher = NULL;
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
    if (strcmp(name, allowed[i]) == 0) cipher = EVP_get_cipherbyname(name);
  if (!cipher) return throw_msg(env, "ENOTSUP", "cfbCreate: cipher not available");
  if ((size_t)EVP_CIPHER_key_length(cipher) != key_len) return throw_msg(env, "EINVAL", "cfbCreate: wrong key length");
  cfb_t *c = calloc(1, sizeof *c);
  if (!c) return throw_msg(env, "ENOMEM", "cfbCreate: out of memory");
  c->enc = context(cipher, key, 1);
  c->dec = context(cipher, key, 0);
  const EVP_CIPHER *ecb = ecb_of(name);
  if (ecb) { /* without it, open() runs the serial CFB context */
    c->ecb = context(ecb, key, 1);
    c->block = EVP_CIPHER_block_size(ecb);
  }
  c->pool_pos = POOL_SIZE;
  if (!c->enc || !c->dec) {
    finalize(env, c, NULL);
    return throw_msg(env, "ENOTSUP", "cfbCreate: cipher context failed");
  }
  if ((strcmp(name, "aes-128-cfb") == 0 || strcmp(name, "aes-256-cfb") == 0) && aes_lanes_available() &&
      aes_lanes_key(&c->lanes, key, key_len))
    c->has_lanes = lanes_agree(c);
  if (napi_create_external(env, c, finalize, NULL, &handle) != napi_ok) {
    finalize(env, c, NULL);
    return throw_internal(env, "napi_create_external");
  }
  return handle;
}

/* The handle in argv[0] and the span buf[0, len) in argv[1..2]; NULL (thrown) on bad arguments. */
static cfb_t *datagram_args(napi_env env, napi_callback_info info, uint8_t **buf, uint32_t *len) {
  napi_value argv[3];
  void *data;
  if (!args_of(env, info, 3, argv)) return NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || napi_get_value_uint32(env, argv[2], len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "transport addon: bad cfb handle or length");
    return NULL;
  }
  *buf = span_of(env, argv[1], 0, *len, "cfb: len beyond the buffer");
  return *buf ? data : NULL;
}

/* Full-block CFB over buf[0, len) from the fixed IV (the context keeps its key; only the IV is reset). */
static int run(EVP_CIPHER_CTX *ctx, uint8_t *buf, uint32_t len) {
  int out;
  return EVP_CipherInit_ex(ctx, NULL, NULL, NULL, KCP_IV, -1) == 1 && EVP_CipherUpdate(ctx, buf, &out, buf, (int)len) == 1;
}

/* The nonce (from the pool) and the CRC of the payload into buf's header; 0 when no random bytes came. */
static int frame(cfb_t *c, uint8_t *buf, uint32_t len) {
  if (c->pool_pos + NONCE_SIZE > POOL_SIZE) {
    if (RAND_bytes(c->pool, POOL_SIZE) != 1) return 0;
    c->pool_pos = 0;
  }
  memcpy(buf, c->pool + c->pool_pos, NONCE_SIZE);
  c->pool_pos += NONCE_SIZE;
  uint32_t crc = crc32_ieee(buf + HEADER_SIZE, len - HEADER_SIZE);
  for (int i = 0; i < 4; i++) buf[NONCE_SIZE + i] = (uint8_t)(crc >> (8 * i));
  return 1;
}

napi_value js_cfb_seal(napi_env env, napi_callback_info info) {
  uint8_t *buf;
  uint32_t len;
  cfb_t *c = datagram_args(env, info, &buf, &len);
  if (!c) return NULL;
  if (len < HEADER_SIZE) return throw_msg(env, "EINVAL", "cfbSeal: datagram shorter than its header");
  if (!frame(c, buf, len)) return throw_msg(env, "EIO", "cfbSeal: no random bytes");
  if (!run(c->enc, buf, len)) return throw_msg(env, "EIO", "cfbSeal: cipher failed");
  return NULL;
}

napi_value js_cfb_seal_many(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  void *data;
  uint32_t count;
  if (!args_of(env, info, 3, argv)) return NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || napi_get_value_uint32(env, argv[2], &count) != napi_ok)
    return throw_msg(env, "EINVAL", "cfbSealMany(handle, bufs, count)");
  cfb_t *c = data;
  uint8_t *bufs[SEAL_BATCH];
  uint32_t lens[SEAL_BATCH];
  size_t queued = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    uint8_t *buf;
    size_t len;
    if (napi_get_element(env, argv[1], i, &item) != napi_ok || !bytes_of(env, item, &buf, &len) || len > UINT32_MAX)
      return throw_msg(env, "EINVAL", "cfbSealMany: bufs[i] is not a Uint8Array");
    if (len < HEADER_SIZE) return throw_msg(env, "EINVAL", "cfbSealMany: datagram shorter than its header");
    if (!frame(c, buf, (uint32_t)len)) return throw_msg(env, "EIO", "cfbSealMany: no random bytes");
    if (!c->has_lanes) {
      if (!run(c->enc, buf, (uint32_t)len)) return throw_msg(env, "EIO", "cfbSealMany: cipher failed");
      continue;
    }
    bufs[queued] = buf;
    lens[queued++] = (uint32_t)len;
    if (queued == SEAL_BATCH) {
      aes_lanes_cfb_encrypt(&c->lanes, KCP_IV, bufs, lens, queued);
      queued = 0;
    }
  }
  if (queued > 0) aes_lanes_cfb_encrypt(&c->lanes, KCP_IV, bufs, lens, queued);
  return NULL;
}

/*
 * CFB decryption needs no chaining: keystream block i is E(c_(i-1)), with c_(-1) the IV, so every
 * block's keystream comes from ciphertext already at hand. One ECB pass over [IV, c_0 .. c_(n-2)]
 * lets AES-NI work on several blocks at once, where the CFB context goes one block at a time.
 */
static int decrypt_parallel(cfb_t *c, uint8_t *buf, uint32_t len) {
  uint32_t b = (uint32_t)c->block;
  uint32_t blocks = (len + b - 1) / b;
  if (blocks * b > sizeof c->shifted) return run(c->dec, buf, len);
  memcpy(c->shifted, KCP_IV, b);
  memcpy(c->shifted + b, buf, (blocks - 1) * b);
  int out;
  if (EVP_EncryptUpdate(c->ecb, c->keystream, &out, c->shifted, (int)(blocks * b)) != 1 || (uint32_t)out != blocks * b) return 0;
  for (uint32_t i = 0; i < len; i++) buf[i] ^= c->keystream[i];
  return 1;
}

napi_value js_cfb_open(napi_env env, napi_callback_info info) {
  uint8_t *buf;
  uint32_t len;
  napi_value result;
  cfb_t *c = datagram_args(env, info, &buf, &len);
  if (!c) return NULL;
  int32_t r;
  if (len < HEADER_SIZE) r = -1;
  else if (!(c->ecb ? decrypt_parallel(c, buf, len) : run(c->dec, buf, len))) r = -2;
  else {
    uint32_t want = (uint32_t)buf[16] | (uint32_t)buf[17] << 8 | (uint32_t)buf[18] << 16 | (uint32_t)buf[19] << 24;
    r = crc32_ieee(buf + HEADER_SIZE, len - HEADER_SIZE) == want ? HEADER_SIZE : -2;
  }
  NAPI_CHECK(env, napi_create_int32(env, r, &result));
  return result;
}
