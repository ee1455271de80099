/*
 * tstier TUN addon: opens a Linux TUN device, configures it with ioctls and delivers the packets
 * it reads to JavaScript in batches.
 *
 * Why an addon: plain Node cannot issue TUNSETIFF, and reading a TUN fd through Node's thread pool
 * is slow and reorders packets. Here the fd is non-blocking and watched by uv_poll on the main loop;
 * when readable we read() until EAGAIN or BATCH_MAX packets, packing them into ONE buffer owned by
 * JavaScript, then make ONE call with the count. JS reads offsets/lengths from two Uint32Arrays it
 * also owns. Nothing is allocated per packet or per batch (docs/tun.md has the measurements).
 *
 * JS API (all methods take the handle returned by open):
 *   open(name|null, mtu, txQueueLen, ipv4|null, ipv4Prefix, ipv6|null, ipv6Prefix) -> [handle, ifname]
 *   start(handle, batchArrayBuffer, offsets:Uint32Array, lengths:Uint32Array, onBatch(count), onError(code, msg))
 *   write(handle, packet:Uint8Array) -> bytes written, or -errno
 *   stats(handle, out:Float64Array(6))  rxPackets rxBytes txPackets txBytes rxDropsTruncated writeErrors
 *   close(handle)
 *   slotSize(mtu) -> bytes the batch buffer needs per packet (buffer = BATCH_MAX * slotSize)
 * Failures in open throw an Error whose `code` is the errno name (e.g. "EPERM").
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Packets per read burst: keeps the event loop fair while amortising the JS call. */
#define BATCH_MAX 64

/* Layout of the kernel's struct in6_ifreq (linux/ipv6.h), declared here because that header
 * clashes with glibc's netinet/in.h. */
struct tt_in6_ifreq {
  struct in6_addr addr;
  uint32_t prefixlen;
  int ifindex;
};

typedef struct {
  napi_env env;
  int fd;           /* -1 once closed */
  uv_poll_t *poll;  /* NULL unless started; freed in its close callback */
  napi_ref on_batch, on_error, batch_ref, offsets_ref, lengths_ref, self_ref;
  napi_async_context async_ctx;
  uint8_t *batch;
  uint32_t *offsets, *lengths;
  uint32_t slot;
  int in_callback; /* >0 while JS runs from our poll callback: defer releasing what it runs with */
  double rx_packets, rx_bytes, tx_packets, tx_bytes, rx_truncated, write_errors;
} tun_t;

#define CHECK(env, call)                                                   \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error((env), "EINTERNAL", "tun addon: N-API call failed: " #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

/* Room per packet: MTU plus headroom, 8-aligned. A read that fills a whole slot may have been cut
 * short by the kernel, so it is dropped and counted instead of delivered. */
static uint32_t slot_for_mtu(uint32_t mtu) { return (mtu + 64 + 7) & ~7u; }

static napi_value throw_errno(napi_env env, int err, const char *what, const char *ifname) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s%s%s: %s", what, ifname ? " " : "", ifname ? ifname : "", strerror(err));
  const char *code = strerrorname_np(err);
  napi_throw_error(env, code ? code : "EUNKNOWN", msg);
  return NULL;
}

static napi_value throw_msg(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static tun_t *get_tun(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, "EINVAL", "tun addon: bad handle");
    return NULL;
  }
  return p;
}

/* Fetches up to `want` arguments into argv (missing ones are undefined) and the handle in argv[0]. */
static tun_t *tun_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, "EINTERNAL", "tun addon: napi_get_cb_info failed");
    return NULL;
  }
  return get_tun(env, argv[0]);
}

/* Data of a typed array of the given type with at least min_len elements, or NULL (JS error thrown). */
static void *typed_data(napi_env env, napi_value v, napi_typedarray_type want, size_t min_len, size_t *len,
                        const char *what) {
  napi_typedarray_type ty;
  void *data = NULL;
  if (napi_get_typedarray_info(env, v, &ty, len, &data, NULL, NULL) != napi_ok || ty != want || *len < min_len) {
    napi_throw_type_error(env, "EINVAL", what);
    return NULL;
  }
  return data;
}

/* Reads an optional string argument into buf; returns 0 if null/undefined, 1 if set, -1 on error. */
static int opt_string(napi_env env, napi_value v, char *buf, size_t cap) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_null || t == napi_undefined) return 0;
  size_t len = 0;
  if (t != napi_string || napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) return -1;
  if (len + 1 >= cap) return -1; /* would have been truncated */
  return 1;
}

static void release_js(tun_t *t) {
  napi_ref *refs[] = {&t->on_batch, &t->on_error, &t->batch_ref, &t->offsets_ref, &t->lengths_ref, &t->self_ref};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i]) {
      napi_delete_reference(t->env, *refs[i]);
      *refs[i] = NULL;
    }
  }
  if (t->async_ctx) {
    napi_async_destroy(t->env, t->async_ctx);
    t->async_ctx = NULL;
  }
  t->batch = NULL;
  t->offsets = t->lengths = NULL;
}

static void free_poll(uv_handle_t *h) { free(h); }

/* Stops polling BEFORE the fd is closed, so epoll never watches a recycled fd number. */
static void stop_poll(tun_t *t) {
  if (t->poll) {
    uv_poll_stop(t->poll);
    uv_close((uv_handle_t *)t->poll, free_poll);
    t->poll = NULL;
  }
}

static void do_close(tun_t *t) {
  stop_poll(t);
  if (t->fd >= 0) {
    close(t->fd);
    t->fd = -1;
  }
  if (!t->in_callback) release_js(t);
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

static void call_js(tun_t *t, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_value fn, recv;
  if (napi_get_reference_value(t->env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(t->env, &recv); /* napi_make_callback needs an object receiver */
  t->in_callback++;
  if (napi_make_callback(t->env, t->async_ctx, recv, fn, argc, argv, NULL) != napi_ok) rethrow_pending(t->env);
  t->in_callback--;
  /* JS closed the device from inside the callback: release the async context and refs now. */
  if (!t->in_callback && t->fd < 0) release_js(t);
}

/* Reports a fatal device error (e.g. EBADFD after `ip link del`) once, and stops polling. */
static void report_error(tun_t *t, int err, const char *what) {
  stop_poll(t);
  if (!t->on_error) return;
  napi_handle_scope scope;
  napi_open_handle_scope(t->env, &scope);
  const char *name = err > 0 ? strerrorname_np(err) : uv_err_name(err);
  char msg[200];
  snprintf(msg, sizeof msg, "%s: %s", what, err > 0 ? strerror(err) : uv_strerror(err));
  napi_value argv[2];
  napi_create_string_utf8(t->env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &argv[0]);
  napi_create_string_utf8(t->env, msg, NAPI_AUTO_LENGTH, &argv[1]);
  call_js(t, t->on_error, 2, argv);
  napi_close_handle_scope(t->env, scope);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  tun_t *t = h->data;
  if (status < 0) {
    /* libuv reports EPOLLERR as UV_EBADF; for a TUN that means the interface went away. */
    report_error(t, status, "device failed (interface deleted?)");
    return;
  }
  uint32_t count = 0;
  size_t off = 0;
  int err = 0;
  /* off never passes (BATCH_MAX - 1) * slot: each kept packet advances it by at most one slot.
   * Reads are capped too, so a stream of oversized (dropped) packets cannot hold the loop. */
  for (int reads = 0; count < BATCH_MAX && reads < 2 * BATCH_MAX; reads++) {
    ssize_t n = read(t->fd, t->batch + off, t->slot);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    if (n == 0) break;
    if ((uint32_t)n >= t->slot) {
      t->rx_truncated++;
      continue;
    }
    t->offsets[count] = (uint32_t)off;
    t->lengths[count] = (uint32_t)n;
    count++;
    t->rx_packets++;
    t->rx_bytes += (double)n;
    off += ((size_t)n + 7) & ~(size_t)7;
  }
  if (count > 0) {
    napi_handle_scope scope;
    napi_open_handle_scope(t->env, &scope);
    napi_value argv[1];
    napi_create_uint32(t->env, count, &argv[0]);
    call_js(t, t->on_batch, 1, argv);
    napi_close_handle_scope(t->env, scope);
  }
  /* The callback may have closed the device; only a still-open device reports its read error. */
  if (err && t->fd >= 0) report_error(t, err, "read failed");
}

/* ---- configuration through ioctls (no exec of `ip`) ---- */

static int set_ifreq(int sock, unsigned long req, struct ifreq *ifr) { return ioctl(sock, req, ifr) < 0 ? errno : 0; }

static int set_ipv4(int sock, const char ifname[IFNAMSIZ], const char *addr, uint32_t prefix) {
  struct ifreq ifr;
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, ifname, IFNAMSIZ);
  sin->sin_family = AF_INET;
  if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) return EINVAL;
  int err = set_ifreq(sock, SIOCSIFADDR, &ifr);
  if (err) return err;
  sin->sin_addr.s_addr = prefix == 0 ? 0 : htonl(0xffffffffu << (32 - prefix));
  return set_ifreq(sock, SIOCSIFNETMASK, &ifr);
}

static int set_ipv6(const char *ifname, const char *addr, uint32_t prefix) {
  struct tt_in6_ifreq req;
  memset(&req, 0, sizeof req);
  if (inet_pton(AF_INET6, addr, &req.addr) != 1) return EINVAL;
  req.prefixlen = prefix;
  req.ifindex = (int)if_nametoindex(ifname);
  if (req.ifindex == 0) return errno;
  int sock = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return errno;
  int err = ioctl(sock, SIOCSIFADDR, &req) < 0 ? errno : 0;
  close(sock);
  return err;
}

/* Finalizer for the handle object: a device dropped without close() still releases its fd. */
static void finalize_tun(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tun_t *t = data;
  do_close(t);
  free(t);
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) return throw_msg(env, "EINVAL", "tun addon: open needs 7 arguments");

  char name[IFNAMSIZ + 1], v4[INET_ADDRSTRLEN + 1], v6[INET6_ADDRSTRLEN + 1];
  uint32_t mtu, txqlen, v4prefix, v6prefix;
  int has_name = opt_string(env, argv[0], name, sizeof name);
  int has_v4 = opt_string(env, argv[3], v4, sizeof v4);
  int has_v6 = opt_string(env, argv[5], v6, sizeof v6);
  if (has_name < 0) return throw_msg(env, "EINVAL", "interface name must be a string shorter than 16 bytes");
  if (has_v4 < 0 || has_v6 < 0) return throw_msg(env, "EINVAL", "address must be a short string");
  if (napi_get_value_uint32(env, argv[1], &mtu) != napi_ok || napi_get_value_uint32(env, argv[2], &txqlen) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &v4prefix) != napi_ok || napi_get_value_uint32(env, argv[6], &v6prefix) != napi_ok)
    return throw_msg(env, "EINVAL", "mtu, txQueueLen and prefixes must be numbers");

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open /dev/net/tun", NULL);

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (has_name) memcpy(ifr.ifr_name, name, IFNAMSIZ);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "TUNSETIFF", has_name ? name : NULL);
  }
  char ifname[IFNAMSIZ];
  memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
  ifname[IFNAMSIZ - 1] = 0;

  /* Closing fd on any failure below removes the (non-persistent) device again. */
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "socket", NULL);
  }
  const char *step = NULL;
  int err = 0;
  struct ifreq req;
  memset(&req, 0, sizeof req);
  memcpy(req.ifr_name, ifname, IFNAMSIZ);
  req.ifr_mtu = (int)mtu;
  if ((err = set_ifreq(sock, SIOCSIFMTU, &req))) { step = "set MTU on"; goto fail; }
  req.ifr_qlen = (int)txqlen;
  if ((err = set_ifreq(sock, SIOCSIFTXQLEN, &req))) { step = "set txqueuelen on"; goto fail; }
  if (has_v4 && (err = set_ipv4(sock, ifname, v4, v4prefix))) { step = "set IPv4 address on"; goto fail; }
  if ((err = set_ifreq(sock, SIOCGIFFLAGS, &req))) { step = "get flags of"; goto fail; }
  req.ifr_flags |= IFF_UP | IFF_RUNNING;
  if ((err = set_ifreq(sock, SIOCSIFFLAGS, &req))) { step = "bring up"; goto fail; }
  /* After link up: the kernel skips DAD on NOARP devices like TUN, so the address is usable at once. */
  if (has_v6 && (err = set_ipv6(ifname, v6, v6prefix))) { step = "set IPv6 address on"; goto fail; }
  close(sock);

  tun_t *t = calloc(1, sizeof *t);
  if (!t) {
    close(fd);
    return throw_errno(env, ENOMEM, "allocate", NULL);
  }
  t->env = env;
  t->fd = fd;
  t->slot = slot_for_mtu(mtu);
  napi_value handle, ifname_v, result;
  CHECK(env, napi_create_external(env, t, finalize_tun, NULL, &handle));
  CHECK(env, napi_create_string_utf8(env, ifname, NAPI_AUTO_LENGTH, &ifname_v));
  CHECK(env, napi_create_array_with_length(env, 2, &result));
  CHECK(env, napi_set_element(env, result, 0, handle));
  CHECK(env, napi_set_element(env, result, 1, ifname_v));
  return result;

fail:
  close(sock);
  close(fd);
  return throw_errno(env, err, step, ifname);
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  tun_t *t = tun_args(env, info, 6, argv);
  if (!t) return NULL;
  if (t->fd < 0) return throw_msg(env, "EBADF", "TUN device is closed");
  if (t->poll) return throw_msg(env, "EBUSY", "TUN device already started");

  void *batch;
  size_t batch_len, n;
  CHECK(env, napi_get_arraybuffer_info(env, argv[1], &batch, &batch_len));
  if (batch_len < (size_t)BATCH_MAX * t->slot) return throw_msg(env, "EINVAL", "tun addon: batch buffer too small");
  uint32_t *offsets = typed_data(env, argv[2], napi_uint32_array, BATCH_MAX, &n, "offsets must be a Uint32Array(64)");
  if (!offsets) return NULL;
  uint32_t *lengths = typed_data(env, argv[3], napi_uint32_array, BATCH_MAX, &n, "lengths must be a Uint32Array(64)");
  if (!lengths) return NULL;

  napi_value resource_name;
  CHECK(env, napi_create_string_utf8(env, "TunDevice", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(env, napi_async_init(env, NULL, resource_name, &t->async_ctx));
  /* While polling, the handle stays reachable so its finalizer cannot free t under the poll. */
  CHECK(env, napi_create_reference(env, argv[0], 1, &t->self_ref));
  CHECK(env, napi_create_reference(env, argv[1], 1, &t->batch_ref));
  CHECK(env, napi_create_reference(env, argv[2], 1, &t->offsets_ref));
  CHECK(env, napi_create_reference(env, argv[3], 1, &t->lengths_ref));
  CHECK(env, napi_create_reference(env, argv[4], 1, &t->on_batch));
  CHECK(env, napi_create_reference(env, argv[5], 1, &t->on_error));
  t->batch = batch;
  t->offsets = offsets;
  t->lengths = lengths;

  uv_loop_t *loop;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  uv_poll_t *poll = malloc(sizeof *poll);
  int rc = poll ? uv_poll_init(loop, poll, t->fd) : UV_ENOMEM;
  if (rc == 0) {
    poll->data = t;
    rc = uv_poll_start(poll, UV_READABLE, on_readable);
    if (rc != 0) uv_close((uv_handle_t *)poll, free_poll);
  } else {
    free(poll);
  }
  if (rc != 0) {
    release_js(t);
    return throw_msg(env, uv_err_name(rc), uv_strerror(rc));
  }
  t->poll = poll;
  return NULL;
}

static napi_value js_write(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  tun_t *t = tun_args(env, info, 2, argv);
  if (!t) return NULL;
  size_t len;
  void *data = typed_data(env, argv[1], napi_uint8_array, 0, &len, "packet must be a Uint8Array");
  if (!data) return NULL;
  /* One write per packet: writev on a TUN would merge pieces into a single packet. */
  ssize_t n = -EBADF;
  if (t->fd >= 0) {
    do {
      n = write(t->fd, data, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) n = -errno;
  }
  if (n >= 0) {
    t->tx_packets++;
    t->tx_bytes += (double)n;
  } else {
    t->write_errors++;
  }
  CHECK(env, napi_create_int32(env, (int32_t)n, &result));
  return result;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  tun_t *t = tun_args(env, info, 2, argv);
  if (!t) return NULL;
  size_t len;
  double *out = typed_data(env, argv[1], napi_float64_array, 6, &len, "stats needs a Float64Array(6)");
  if (!out) return NULL;
  out[0] = t->rx_packets;
  out[1] = t->rx_bytes;
  out[2] = t->tx_packets;
  out[3] = t->tx_bytes;
  out[4] = t->rx_truncated;
  out[5] = t->write_errors;
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  tun_t *t = tun_args(env, info, 1, argv);
  if (!t) return NULL;
  do_close(t);
  return NULL;
}

static napi_value js_slot_size(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  uint32_t mtu;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_uint32(env, argv[0], &mtu));
  CHECK(env, napi_create_uint32(env, slot_for_mtu(mtu), &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"write", NULL, js_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"slotSize", NULL, js_slot_size, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_value batch_max;
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  CHECK(env, napi_create_uint32(env, BATCH_MAX, &batch_max));
  CHECK(env, napi_set_named_property(env, exports, "BATCH_MAX", batch_max));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
