/*
 * tstier transport addon: kcp-go's per-datagram work, which a profile of tstier-kcptun put at most of a
 * session's CPU in JavaScript: the CFB cipher with its nonce and CRC-32 framing (cfb.c), CRC-32 and
 * CRC-32C (crc32.c, the latter for snappy framing), and the Reed-Solomon multiply-add that FEC encode and
 * decode spend their time in (gf.c). Every function works in place on buffers JavaScript owns; nothing
 * is allocated per datagram. Optional: without it the same wire runs on the TypeScript reference code.
 */
#include "addon.h"

const char addon_name[] = "transport addon";

int args_of(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want) {
    napi_throw_type_error(env, "EINVAL", "transport addon: bad arguments");
    return 0;
  }
  return 1;
}

uint8_t *span_of(napi_env env, napi_value buf, uint32_t start, uint32_t end, const char *what) {
  uint8_t *p;
  size_t len;
  if (!bytes_of(env, buf, &p, &len) || start > end || end > len) {
    napi_throw_range_error(env, "EINVAL", what);
    return NULL;
  }
  /* An empty array may have no storage; NULL means "thrown" here, so hand out a harmless address. */
  static uint8_t empty;
  return p ? p : &empty;
}

static napi_value init(napi_env env, napi_value exports) {
  crc32_init();
  gf_init();
  napi_property_descriptor props[] = {
    NAPI_METHOD("crc32", js_crc32),
    NAPI_METHOD("cfbCreate", js_cfb_create),
    NAPI_METHOD("cfbSeal", js_cfb_seal),
    NAPI_METHOD("cfbSealMany", js_cfb_seal_many),
    NAPI_METHOD("cfbOpen", js_cfb_open),
    NAPI_METHOD("gfMulAdd", js_gf_mul_add),
    NAPI_METHOD("gfMulAddRows", js_gf_mul_add_rows),
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok ? exports : NULL;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
