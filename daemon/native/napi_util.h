/*
 * N-API helpers shared by tstier's addons (daemon/tun/native, daemon/peer/native,
 * daemon/faketcp/native): each addon's binding.gyp compiles napi_util.c into it.
 *
 * The batch reader is the read side the TUN and raw TCP addons have in common: a non-blocking fd
 * watched by uv_poll on the main loop; when readable the addon fills up to BATCH_MAX slots of ONE
 * buffer owned by JavaScript and makes ONE call with the count, JS reading offsets/lengths from two
 * Uint32Arrays it also owns. Nothing is allocated per packet or per batch.
 */
#ifndef TSTIER_NAPI_UTIL_H
#define TSTIER_NAPI_UTIL_H
#include <node_api.h>
#include <uv.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Packets per read burst: keeps the event loop fair while amortising the JS call. */
#define BATCH_MAX 64

/* The addon's name in its error messages ("tun addon"); each addon defines it once. */
extern const char addon_name[];

/* Throws EINTERNAL naming the failed call. For N-API calls that fail only on a programming error. */
#define NAPI_CHECK(env, call)                        \
  do {                                               \
    if ((call) != napi_ok) return throw_internal((env), #call); \
  } while (0)

napi_value throw_internal(napi_env env, const char *call);
/* Throws an Error whose code is the errno name (e.g. "EPERM"): "what[ subject]: strerror". */
napi_value throw_errno(napi_env env, int err, const char *what, const char *subject);
napi_value throw_msg(napi_env env, const char *code, const char *msg);

/* The data and element count of a typed array of type `want`; 0 (nothing thrown) if `v` is anything else. */
int typed_array_of(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len);
/* The same, or NULL with a TypeError `what` thrown if `v` is no such array or has under min_len elements. */
void *typed_data(napi_env env, napi_value v, napi_typedarray_type want, size_t min_len, size_t *len, const char *what);

/* The bytes of a Uint8Array (a Buffer is one); 0 if `v` is anything else. */
static inline int bytes_of(napi_env env, napi_value v, uint8_t **p, size_t *len) {
  void *data;
  if (!typed_array_of(env, v, napi_uint8_array, &data, len)) return 0;
  *p = data;
  return 1;
}

typedef struct {
  napi_env env;
  int fd;           /* -1 once closed */
  uv_poll_t *poll;  /* NULL unless started; freed in its close callback */
  napi_ref on_batch, on_error, batch_ref, offsets_ref, lengths_ref, self_ref;
  napi_async_context async_ctx;
  uint8_t *batch;
  uint32_t *offsets, *lengths;
  int in_callback; /* >0 while JS runs from our poll callback: defer releasing what it runs with */
  /* What stats() reports, in its order. */
  double rx_packets, rx_bytes, tx_packets, tx_bytes, rx_truncated, tx_errors;
} batch_reader_t;

/* A zeroed handle struct of `size` bytes (a batch reader first) for the open `fd`, wrapped as the JS
 * handle in *handle with reader_finalize; NULL with the fd closed and an error thrown on failure. */
void *reader_new(napi_env env, size_t size, int fd, napi_value *handle);

/* The reader is the FIRST member of each addon's handle struct, so the handle's external data, the
 * poll's data and the reader are one pointer. Fetches up to `want` arguments into argv (missing ones
 * are undefined) and the handle in argv[0]; NULL with a TypeError thrown for a bad handle. */
void *reader_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);

/* start(handle, batch, offsets, lengths, onBatch(count), onError(code, msg)) in argv: checks the
 * buffers (batch at least batch_min bytes), holds them and the callbacks, and starts polling with
 * on_readable. `what` names the fd in errors ("TUN device"), `resource` the async resource. */
napi_value reader_start(napi_env env, batch_reader_t *r, napi_value *argv, size_t batch_min, const char *what,
                        const char *resource, uv_poll_cb on_readable);
/* Calls onBatch(count) when count > 0. */
void reader_deliver(batch_reader_t *r, uint32_t count);
/* Reports a fatal fd error (err: errno, or a negative libuv code) to onError once, and stops polling. */
void reader_report_error(batch_reader_t *r, int err, const char *what);
/* Reports an error of one read (the fd still works, e.g. an ICMP report on a UDP socket) to onError; polling goes on. */
void reader_report_soft(batch_reader_t *r, int err, const char *what);
/* Counts a write or send that returned n (bytes, or -errno), and returns n to JS. */
napi_value reader_tx_result(napi_env env, batch_reader_t *r, ssize_t n);

/* stats(handle, out: Float64Array(6)) and close(handle), the same in every batch-reading addon. */
napi_value reader_js_stats(napi_env env, napi_callback_info info);
napi_value reader_js_close(napi_env env, napi_callback_info info);

/* Defines the addon's methods on exports, and its BATCH_MAX; returns exports, or NULL (thrown). */
napi_value reader_exports(napi_env env, napi_value exports, const napi_property_descriptor *methods, size_t count);

/* An enumerable method of the exports object. */
#define NAPI_METHOD(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
#endif
