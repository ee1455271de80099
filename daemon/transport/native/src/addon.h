/* tstier transport addon: shared declarations (see addon.c). */
#ifndef TSTIER_TRANSPORT_ADDON_H
#define TSTIER_TRANSPORT_ADDON_H
#include <stddef.h>
#include <stdint.h>

#include "napi_util.h"

/* Fetches exactly `want` arguments into argv; 0 with a TypeError thrown otherwise. */
int args_of(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
/* The bytes of argv as a Uint8Array, with [start, end) checked against its length; NULL (thrown) if not. */
uint8_t *span_of(napi_env env, napi_value buf, uint32_t start, uint32_t end, const char *what);

/* crc32.c */
uint32_t crc32_ieee(const uint8_t *p, size_t n);
uint32_t crc32_castagnoli(const uint8_t *p, size_t n);
void crc32_init(void);
napi_value js_crc32(napi_env env, napi_callback_info info);

/* cfb.c */
napi_value js_cfb_create(napi_env env, napi_callback_info info);
napi_value js_cfb_seal(napi_env env, napi_callback_info info);
napi_value js_cfb_seal_many(napi_env env, napi_callback_info info);
napi_value js_cfb_open(napi_env env, napi_callback_info info);

/* gf.c */
void gf_init(void);
napi_value js_gf_mul_add(napi_env env, napi_callback_info info);
napi_value js_gf_mul_add_rows(napi_env env, napi_callback_info info);
#endif
