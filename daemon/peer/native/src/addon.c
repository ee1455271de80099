/*
 * tstier peer-layer addon: the data path's two per-packet costs that node APIs cannot make cheap,
 * AES-GCM sealing (aead.c) and sending runs of datagrams (udp.c); and what dgram cannot tell: which
 * peers' ports refused a listener (icmp.c). Optional: without it the peer layer runs on node:crypto
 * and dgram, slower, and a listener learns of a killed peer only from its silence.
 */
#include "addon.h"

const char addon_name[] = "peer addon";

static napi_value init(napi_env env, napi_value exports) {
  if (register_aead(env, exports) != napi_ok || register_udp(env, exports) != napi_ok ||
      register_icmp(env, exports) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
