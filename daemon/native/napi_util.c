/* N-API helpers shared by tstier's addons; see napi_util.h. */
#define _GNU_SOURCE
#include "napi_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

napi_value throw_internal(napi_env env, const char *call) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: N-API call failed: %s", addon_name, call);
  napi_throw_error(env, "EINTERNAL", msg);
  return NULL;
}

napi_value throw_errno(napi_env env, int err, const char *what, const char *subject) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s%s%s: %s", what, subject ? " " : "", subject ? subject : "", strerror(err));
  const char *code = strerrorname_np(err);
  napi_throw_error(env, code ? code : "EUNKNOWN", msg);
  return NULL;
}

napi_value throw_msg(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

int typed_array_of(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type ty;
  *data = NULL;
  return napi_get_typedarray_info(env, v, &ty, len, data, NULL, NULL) == napi_ok && ty == want;
}

void *typed_data(napi_env env, napi_value v, napi_typedarray_type want, size_t min_len, size_t *len, const char *what) {
  void *data;
  if (!typed_array_of(env, v, want, &data, len) || *len < min_len) {
    napi_throw_type_error(env, "EINVAL", what);
    return NULL;
  }
  return data;
}

void *reader_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
      napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: bad handle", addon_name);
    napi_throw_type_error(env, "EINVAL", msg);
    return NULL;
  }
  return p;
}

static void release_js(batch_reader_t *r) {
  napi_ref *refs[] = {&r->on_batch, &r->on_error, &r->batch_ref, &r->offsets_ref, &r->lengths_ref, &r->self_ref};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i]) {
      napi_delete_reference(r->env, *refs[i]);
      *refs[i] = NULL;
    }
  }
  if (r->async_ctx) {
    napi_async_destroy(r->env, r->async_ctx);
    r->async_ctx = NULL;
  }
  r->batch = NULL;
  r->offsets = r->lengths = NULL;
}

static void free_poll(uv_handle_t *h) { free(h); }

/* Stops polling BEFORE the fd is closed, so epoll never watches a recycled fd number. */
static void stop_poll(batch_reader_t *r) {
  if (r->poll) {
    uv_poll_stop(r->poll);
    uv_close((uv_handle_t *)r->poll, free_poll);
    r->poll = NULL;
  }
}

/* Stops polling, closes the fd, and releases the JS side unless JS is running from the poll. */
static void reader_close(batch_reader_t *r) {
  stop_poll(r);
  if (r->fd >= 0) {
    close(r->fd);
    r->fd = -1;
  }
  if (!r->in_callback) release_js(r);
}

/* A handle dropped without close() still releases its fd. */
static void reader_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  reader_close(data);
  free(data);
}

void *reader_new(napi_env env, size_t size, int fd, napi_value *handle) {
  batch_reader_t *r = calloc(1, size);
  if (!r) {
    close(fd);
    throw_errno(env, ENOMEM, "allocate", NULL);
    return NULL;
  }
  r->env = env;
  r->fd = fd;
  if (napi_create_external(env, r, reader_finalize, NULL, handle) != napi_ok) {
    reader_close(r);
    free(r);
    throw_internal(env, "napi_create_external");
    return NULL;
  }
  return r;
}

/* A JS callback that throws is a bug in the caller: surface it as an uncaught exception. */
static void rethrow_pending(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
}

static void call_js(batch_reader_t *r, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_value fn, recv;
  if (napi_get_reference_value(r->env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(r->env, &recv); /* napi_make_callback needs an object receiver */
  r->in_callback++;
  if (napi_make_callback(r->env, r->async_ctx, recv, fn, argc, argv, NULL) != napi_ok) rethrow_pending(r->env);
  r->in_callback--;
  /* JS closed the fd from inside the callback: release the async context and refs now. */
  if (!r->in_callback && r->fd < 0) release_js(r);
}

void reader_deliver(batch_reader_t *r, uint32_t count) {
  if (count == 0) return;
  napi_handle_scope scope;
  napi_open_handle_scope(r->env, &scope);
  napi_value argv[1];
  napi_create_uint32(r->env, count, &argv[0]);
  call_js(r, r->on_batch, 1, argv);
  napi_close_handle_scope(r->env, scope);
}

void reader_report_error(batch_reader_t *r, int err, const char *what) {
  stop_poll(r);
  reader_report_soft(r, err, what);
}

void reader_report_soft(batch_reader_t *r, int err, const char *what) {
  if (!r->on_error) return;
  napi_handle_scope scope;
  napi_open_handle_scope(r->env, &scope);
  const char *name = err > 0 ? strerrorname_np(err) : uv_err_name(err);
  char msg[200];
  snprintf(msg, sizeof msg, "%s: %s", what, err > 0 ? strerror(err) : uv_strerror(err));
  napi_value argv[2];
  napi_create_string_utf8(r->env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &argv[0]);
  napi_create_string_utf8(r->env, msg, NAPI_AUTO_LENGTH, &argv[1]);
  call_js(r, r->on_error, 2, argv);
  napi_close_handle_scope(r->env, scope);
}

napi_value reader_tx_result(napi_env env, batch_reader_t *r, ssize_t n) {
  if (n >= 0) {
    r->tx_packets++;
    r->tx_bytes += (double)n;
  } else {
    r->tx_errors++;
  }
  napi_value result;
  NAPI_CHECK(env, napi_create_int32(env, (int32_t)n, &result));
  return result;
}

napi_value reader_start(napi_env env, batch_reader_t *r, napi_value *argv, size_t batch_min, const char *what,
                        const char *resource, uv_poll_cb on_readable) {
  char msg[128];
  if (r->fd < 0) {
    snprintf(msg, sizeof msg, "%s is closed", what);
    return throw_msg(env, "EBADF", msg);
  }
  if (r->poll) {
    snprintf(msg, sizeof msg, "%s already started", what);
    return throw_msg(env, "EBUSY", msg);
  }
  void *batch;
  size_t batch_len, n;
  NAPI_CHECK(env, napi_get_arraybuffer_info(env, argv[1], &batch, &batch_len));
  if (batch_len < batch_min) {
    snprintf(msg, sizeof msg, "%s: batch buffer too small", addon_name);
    return throw_msg(env, "EINVAL", msg);
  }
  uint32_t *offsets = typed_data(env, argv[2], napi_uint32_array, BATCH_MAX, &n, "offsets must be a Uint32Array(BATCH_MAX)");
  if (!offsets) return NULL;
  uint32_t *lengths = typed_data(env, argv[3], napi_uint32_array, BATCH_MAX, &n, "lengths must be a Uint32Array(BATCH_MAX)");
  if (!lengths) return NULL;

  napi_value resource_name;
  NAPI_CHECK(env, napi_create_string_utf8(env, resource, NAPI_AUTO_LENGTH, &resource_name));
  NAPI_CHECK(env, napi_async_init(env, NULL, resource_name, &r->async_ctx));
  /* While polling, the handle stays reachable so its finalizer cannot free r under the poll. */
  NAPI_CHECK(env, napi_create_reference(env, argv[0], 1, &r->self_ref));
  NAPI_CHECK(env, napi_create_reference(env, argv[1], 1, &r->batch_ref));
  NAPI_CHECK(env, napi_create_reference(env, argv[2], 1, &r->offsets_ref));
  NAPI_CHECK(env, napi_create_reference(env, argv[3], 1, &r->lengths_ref));
  NAPI_CHECK(env, napi_create_reference(env, argv[4], 1, &r->on_batch));
  NAPI_CHECK(env, napi_create_reference(env, argv[5], 1, &r->on_error));
  r->batch = batch;
  r->offsets = offsets;
  r->lengths = lengths;

  uv_loop_t *loop;
  NAPI_CHECK(env, napi_get_uv_event_loop(env, &loop));
  uv_poll_t *poll = malloc(sizeof *poll);
  int rc = poll ? uv_poll_init(loop, poll, r->fd) : UV_ENOMEM;
  if (rc == 0) {
    poll->data = r;
    rc = uv_poll_start(poll, UV_READABLE, on_readable);
    if (rc != 0) uv_close((uv_handle_t *)poll, free_poll);
  } else {
    free(poll);
  }
  if (rc != 0) {
    release_js(r);
    return throw_msg(env, uv_err_name(rc), uv_strerror(rc));
  }
  r->poll = poll;
  return NULL;
}

napi_value reader_js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  batch_reader_t *r = reader_args(env, info, 2, argv);
  if (!r) return NULL;
  size_t len;
  double *out = typed_data(env, argv[1], napi_float64_array, 6, &len, "stats needs a Float64Array(6)");
  if (!out) return NULL;
  out[0] = r->rx_packets;
  out[1] = r->rx_bytes;
  out[2] = r->tx_packets;
  out[3] = r->tx_bytes;
  out[4] = r->rx_truncated;
  out[5] = r->tx_errors;
  return NULL;
}

napi_value reader_js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  batch_reader_t *r = reader_args(env, info, 1, argv);
  if (!r) return NULL;
  reader_close(r);
  return NULL;
}

napi_value reader_exports(napi_env env, napi_value exports, const napi_property_descriptor *methods, size_t count) {
  napi_value batch_max;
  NAPI_CHECK(env, napi_define_properties(env, exports, count, methods));
  NAPI_CHECK(env, napi_create_uint32(env, BATCH_MAX, &batch_max));
  NAPI_CHECK(env, napi_set_named_property(env, exports, "BATCH_MAX", batch_max));
  return exports;
}
