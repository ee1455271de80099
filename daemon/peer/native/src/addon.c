/*
 * tstier peer-layer addon: the data path's two per-packet costs that node APIs cannot make cheap,
 * AEAD sealing in EasyTier's payload layout (et_aead.c) and sending runs of datagrams
 * (udp.c), and reading them in batches (udp_recv.c); and what dgram cannot tell: which peers' ports refused a listener (icmp.c). Optional: without it the peer layer runs on node:crypto
 * and dgram, slower, and a listener learns of a killed peer only from its silence.
 */
#include "addon.h"

const char addon_name[] = "peer addon";

int fd_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, int32_t *fd) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want ||
      napi_get_value_int32(env, argv[0], fd) != napi_ok) {
    napi_throw_error(env, "TSTIER_E_NATIVE", "peer addon: bad arguments");
    return 0;
  }
  return 1;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    NAPI_METHOD("etAeadCreate", et_aead_create),
    NAPI_METHOD("etAeadSeal", et_aead_seal),
    NAPI_METHOD("etAeadOpen", et_aead_open),
    NAPI_METHOD("udpSendRun", udp_send_run),
    NAPI_METHOD("udpSendMany", udp_send_many),
    NAPI_METHOD("udpOffloads", udp_offloads),
    NAPI_METHOD("udpDrops", udp_drops),
    NAPI_METHOD("udpRecvErrors", udp_recv_errors),
    NAPI_METHOD("udpTakeRefused", udp_take_refused),
    NAPI_METHOD("udpOpen", udp_open),
    NAPI_METHOD("udpConnect", udp_connect),
    NAPI_METHOD("udpLocal", udp_local),
    NAPI_METHOD("udpFd", udp_fd),
    NAPI_METHOD("udpStart", udp_start),
    NAPI_METHOD("udpStats", reader_js_stats),
    NAPI_METHOD("udpClose", reader_js_close),
  };
  return reader_exports(env, exports, props, sizeof props / sizeof props[0]);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
