/*
 * EasyTier's payload AEAD (aes-gcm = AES-128-GCM, aes-256-gcm, chacha20 = ChaCha20-Poly1305) with
 * ONE cipher context per key, as aead.c does for tstier's session packets, and for the same reason:
 * node:crypto fixes an AEAD's nonce at creation, so each packet paid for a cipher object, a
 * ciphertext, a tag and a concatenation. Here the bytes go in place into buffers JavaScript owns.
 *
 * Layout (EasyTier's, daemon/peer/easytier/cipher.ts): ciphertext(n) ‖ tag(16) ‖ nonce(12), a random
 * nonce per packet, empty AAD. OpenSSL is Node's own, so the bytes are node:crypto's.
 *
 * JS API (registered by addon.c):
 *   etAeadCreate(cipher: 0 aes-128-gcm | 1 aes-256-gcm | 2 chacha20-poly1305, key, encrypt) -> handle
 *   etAeadSeal(handle, out, at, payload, nonceGiven: boolean)
 *       encrypts payload into out[at..at+n] (payload may be that very range), then writes the tag
 *       and the nonce after it; the nonce is random unless nonceGiven (then it is already there:
 *       tests compare with node:crypto that way).
 *   etAeadOpen(handle, buf, at, len) -> plaintext length, or -1 if it does not authenticate
 *       decrypts buf[at..at+len-28] in place.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addon.h"

#define TAG_LEN 16
#define NONCE_LEN 12
#define TAIL_LEN (TAG_LEN + NONCE_LEN)

/*
 * Nonces are drawn from OpenSSL's CSPRNG in batches: RAND_bytes costs more per call (~0.6 us here)
 * than sealing a 1400-byte packet, and a batch keeps every nonce as random as one call per packet.
 */
#define NONCE_BATCH 256

typedef struct {
  EVP_CIPHER_CTX *ctx;
  int encrypt;
  /* Unused nonces are nonces[next * 12 ..]; next == NONCE_BATCH means draw a new batch. */
  unsigned next;
  uint8_t nonces[NONCE_BATCH * NONCE_LEN];
} et_aead_t;

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  et_aead_t *a = data;
  EVP_CIPHER_CTX_free(a->ctx);
  free(a);
}

static et_aead_t *unwrap(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return data;
}

/*
 * What seal and open both take first: exactly `want` arguments into argv, a handle made for
 * `encrypt` (argv[0]) into *a, the buffer argv[1] into *buf and *buf_len, the offset argv[2] into
 * *at. 1, or 0 with the error thrown.
 */
static int aead_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, int encrypt,
                     et_aead_t **a, uint8_t **buf, size_t *buf_len, uint32_t *at) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want
      || (*a = unwrap(env, argv[0])) == NULL || !(*a)->encrypt != !encrypt
      || !bytes_of(env, argv[1], buf, buf_len) || napi_get_value_uint32(env, argv[2], at) != napi_ok) {
    napi_throw_error(env, "TSTIER_E_NATIVE", "peer addon: bad arguments");
    return 0;
  }
  return 1;
}

/* Whether `len` bytes from `at` lie inside a buffer of `buf_len`, and OpenSSL's int can count them. */
static int fits(uint32_t at, size_t len, size_t buf_len) {
  return (size_t)at + len <= buf_len && len <= INT32_MAX;
}

napi_value et_aead_create(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  uint8_t *key;
  size_t key_len;
  uint32_t which;
  bool encrypt;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || !bytes_of(env, argv[1], &key, &key_len)) CHECK(napi_invalid_arg);
  CHECK(napi_get_value_uint32(env, argv[0], &which));
  CHECK(napi_get_value_bool(env, argv[2], &encrypt));
  const EVP_CIPHER *cipher = which == 0 ? EVP_aes_128_gcm() : which == 1 ? EVP_aes_256_gcm()
    : which == 2 ? EVP_chacha20_poly1305() : NULL;
  if (!cipher || (int)key_len != EVP_CIPHER_key_length(cipher)) CHECK(napi_invalid_arg);
  et_aead_t *a = malloc(sizeof *a);
  if (!a) CHECK(napi_generic_failure);
  a->encrypt = encrypt;
  a->next = NONCE_BATCH;
  a->ctx = EVP_CIPHER_CTX_new();
  int ok = a->ctx && EVP_CipherInit_ex(a->ctx, cipher, NULL, NULL, NULL, encrypt) == 1
    && EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_IVLEN, NONCE_LEN, NULL) == 1
    && EVP_CipherInit_ex(a->ctx, NULL, NULL, key, NULL, encrypt) == 1;
  if (!ok) {
    finalize(env, a, NULL);
    CHECK(napi_generic_failure);
  }
  CHECK(napi_create_external(env, a, finalize, NULL, &out));
  return out;
}

napi_value et_aead_seal(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  et_aead_t *a;
  uint8_t *out, *payload;
  size_t out_len, n;
  uint32_t at;
  bool nonce_given;
  if (!aead_args(env, info, 5, argv, 1, &a, &out, &out_len, &at)) return NULL;
  if (!bytes_of(env, argv[3], &payload, &n)) CHECK(napi_invalid_arg);
  CHECK(napi_get_value_bool(env, argv[4], &nonce_given));
  if (!fits(at, n + TAIL_LEN, out_len)) CHECK(napi_invalid_arg);
  uint8_t *ct = out + at, *tag = ct + n, *nonce = tag + TAG_LEN;
  int len;
  if (!nonce_given) {
    if (a->next == NONCE_BATCH) {
      if (RAND_bytes(a->nonces, sizeof a->nonces) != 1) CHECK(napi_generic_failure);
      a->next = 0;
    }
    memcpy(nonce, a->nonces + a->next++ * NONCE_LEN, NONCE_LEN);
  }
  int ok = EVP_EncryptInit_ex(a->ctx, NULL, NULL, NULL, nonce) == 1
    && EVP_EncryptUpdate(a->ctx, ct, &len, payload, (int)n) == 1
    && EVP_EncryptFinal_ex(a->ctx, ct + len, &len) == 1
    && EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag) == 1;
  if (!ok) CHECK(napi_generic_failure);
  return NULL;
}

napi_value et_aead_open(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  et_aead_t *a;
  uint8_t *buf;
  size_t buf_len;
  uint32_t at, total;
  if (!aead_args(env, info, 4, argv, 0, &a, &buf, &buf_len, &at)) return NULL;
  CHECK(napi_get_value_uint32(env, argv[3], &total));
  if (!fits(at, total, buf_len)) CHECK(napi_invalid_arg);
  int32_t plain = -1;
  if (total >= TAIL_LEN) {
    int n = (int)(total - TAIL_LEN), len;
    uint8_t *data = buf + at, *tag = data + n, *nonce = tag + TAG_LEN;
    int ok = EVP_DecryptInit_ex(a->ctx, NULL, NULL, NULL, nonce) == 1
      && EVP_DecryptUpdate(a->ctx, data, &len, data, n) == 1
      && EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) == 1
      && EVP_DecryptFinal_ex(a->ctx, data + len, &len) == 1;
    if (ok) plain = n;
  }
  CHECK(napi_create_int32(env, plain, &result));
  return result;
}
