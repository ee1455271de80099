/*
 * AES-256-GCM for peer-session packets with ONE cipher context per key.
 *
 * Why an addon: node:crypto fixes a GCM cipher's IV at creation, so every packet paid for a fresh
 * cipher object (createCipheriv, its key import and its JS wrapper), a ciphertext buffer, a tag
 * buffer and the garbage they leave: ~4 us a packet on this box where the AES-GCM itself takes
 * ~0.6 us. Here a context keeps its expanded key and only takes a new IV per packet, and the
 * bytes go straight into buffers JavaScript owns. The OpenSSL used is Node's own (its headers
 * ship with Node and the binary exports the symbols), so the result is byte for byte what
 * node:crypto produces.
 *
 * Packet layout (daemon/peer/session.ts): [header 16 = AAD][counter u64 LE][ciphertext n][tag 16].
 * The nonce is 4 zero bytes then the 8 counter bytes.
 *
 * JS API (registered by addon.c):
 *   aeadCreate(key: Uint8Array(32), encrypt: boolean) -> handle
 *   aeadSeal(handle, out: Uint8Array, at: number, payload: Uint8Array)
 *       header and counter are already at out[at..at+24]; writes ciphertext and tag after them.
 *   aeadOpen(handle, wire: Uint8Array) -> boolean
 *       decrypts wire[24..len-16] in place; false if the tag does not authenticate.
 * Argument errors throw; they are programming errors, never caused by packet contents.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addon.h"

#define HEADER_LEN 16
#define COUNTER_LEN 8
#define TAG_LEN 16
#define PREFIX_LEN (HEADER_LEN + COUNTER_LEN)

typedef struct {
  EVP_CIPHER_CTX *ctx;
  int encrypt;
} aead_t;

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  aead_t *a = data;
  EVP_CIPHER_CTX_free(a->ctx);
  free(a);
}

static aead_t *unwrap(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return data;
}

/* The nonce of the packet whose counter starts at `counter`. */
static void nonce(uint8_t iv[12], const uint8_t *counter) {
  memset(iv, 0, 4);
  memcpy(iv + 4, counter, COUNTER_LEN);
}

napi_value aead_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  uint8_t *key;
  size_t key_len;
  bool encrypt;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !bytes_of(env, argv[0], &key, &key_len) || key_len != 32) CHECK(napi_invalid_arg);
  CHECK(napi_get_value_bool(env, argv[1], &encrypt));
  aead_t *a = malloc(sizeof *a);
  if (!a) CHECK(napi_generic_failure);
  a->encrypt = encrypt;
  a->ctx = EVP_CIPHER_CTX_new();
  int ok = a->ctx && EVP_CipherInit_ex(a->ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) == 1
    && EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1
    && EVP_CipherInit_ex(a->ctx, NULL, NULL, key, NULL, encrypt) == 1;
  if (!ok) {
    finalize(env, a, NULL);
    CHECK(napi_generic_failure);
  }
  CHECK(napi_create_external(env, a, finalize, NULL, &out));
  return out;
}

napi_value aead_seal(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint8_t *out, *payload;
  size_t out_len, n;
  uint32_t at;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  aead_t *a = argc == 4 ? unwrap(env, argv[0]) : NULL;
  if (!a || !a->encrypt || !bytes_of(env, argv[1], &out, &out_len) || !bytes_of(env, argv[3], &payload, &n))
    CHECK(napi_invalid_arg);
  CHECK(napi_get_value_uint32(env, argv[2], &at));
  if ((size_t)at + PREFIX_LEN + n + TAG_LEN > out_len || n > INT32_MAX) CHECK(napi_invalid_arg);
  uint8_t *p = out + at, iv[12];
  int len;
  nonce(iv, p + HEADER_LEN);
  int ok = EVP_EncryptInit_ex(a->ctx, NULL, NULL, NULL, iv) == 1
    && EVP_EncryptUpdate(a->ctx, NULL, &len, p, HEADER_LEN) == 1
    && EVP_EncryptUpdate(a->ctx, p + PREFIX_LEN, &len, payload, (int)n) == 1
    && EVP_EncryptFinal_ex(a->ctx, p + PREFIX_LEN + len, &len) == 1
    && EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, p + PREFIX_LEN + n) == 1;
  if (!ok) CHECK(napi_generic_failure);
  return NULL;
}

napi_value aead_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  uint8_t *wire;
  size_t wire_len;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  aead_t *a = argc == 2 ? unwrap(env, argv[0]) : NULL;
  if (!a || a->encrypt || !bytes_of(env, argv[1], &wire, &wire_len) || wire_len < PREFIX_LEN + TAG_LEN
      || wire_len > INT32_MAX)
    CHECK(napi_invalid_arg);
  int n = (int)(wire_len - PREFIX_LEN - TAG_LEN), len;
  uint8_t iv[12], *data = wire + PREFIX_LEN;
  nonce(iv, wire + HEADER_LEN);
  int ok = EVP_DecryptInit_ex(a->ctx, NULL, NULL, NULL, iv) == 1
    && EVP_DecryptUpdate(a->ctx, NULL, &len, wire, HEADER_LEN) == 1
    && EVP_DecryptUpdate(a->ctx, data, &len, data, n) == 1
    && EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, data + n) == 1
    && EVP_DecryptFinal_ex(a->ctx, data + len, &len) == 1;
  CHECK(napi_get_boolean(env, ok, &result));
  return result;
}
