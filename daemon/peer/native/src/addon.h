/* Shared by the peer-layer addon's parts: argument checks and each part's methods (bytes_of and
 * the other N-API helpers shared with the other addons are in daemon/native/napi_util.h). */
#ifndef TSTIER_PEER_ADDON_H
#define TSTIER_PEER_ADDON_H
#include "napi_util.h"

/* Argument errors throw: they are programming errors, never caused by packet contents. */
#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, "TSTIER_E_NATIVE", "peer addon: bad arguments"); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

/* Exactly `want` arguments into argv, the first a file descriptor, into *fd: 1, or 0 with the error thrown. */
int fd_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, int32_t *fd);

/* The methods, each part's own (see its file), exported under their JS names by addon.c. */
napi_value et_aead_create(napi_env env, napi_callback_info info);
napi_value et_aead_seal(napi_env env, napi_callback_info info);
napi_value et_aead_open(napi_env env, napi_callback_info info);
napi_value udp_send_run(napi_env env, napi_callback_info info);
napi_value udp_send_many(napi_env env, napi_callback_info info);
napi_value udp_offloads(napi_env env, napi_callback_info info);
napi_value udp_drops(napi_env env, napi_callback_info info);
napi_value udp_recv_errors(napi_env env, napi_callback_info info);
napi_value udp_take_refused(napi_env env, napi_callback_info info);
napi_value udp_open(napi_env env, napi_callback_info info);
napi_value udp_connect(napi_env env, napi_callback_info info);
napi_value udp_local(napi_env env, napi_callback_info info);
napi_value udp_fd(napi_env env, napi_callback_info info);
napi_value udp_start(napi_env env, napi_callback_info info);
#endif
