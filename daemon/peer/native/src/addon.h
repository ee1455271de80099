/* Shared by the peer-layer addon's parts: argument helpers and each part's registration. */
#ifndef TSTIER_PEER_ADDON_H
#define TSTIER_PEER_ADDON_H
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

/* Argument errors throw: they are programming errors, never caused by packet contents. */
#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, "TSTIER_E_NATIVE", "peer addon: bad arguments"); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

/* The bytes of a Uint8Array (a Buffer is one); 0 if `v` is anything else. */
int bytes_of(napi_env env, napi_value v, uint8_t **p, size_t *len);

napi_status register_aead(napi_env env, napi_value exports);
napi_status register_udp(napi_env env, napi_value exports);
napi_status register_icmp(napi_env env, napi_value exports);
#endif
