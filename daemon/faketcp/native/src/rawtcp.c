/*
 * tstier raw TCP addon: the socket side of fake TCP. An IPv4 SOCK_RAW/IPPROTO_TCP socket receives a
 * copy of every TCP segment the host gets (IP header included); a classic BPF filter keeps only those
 * for one local port, so the socket does not wake us for the host's other TCP traffic. Sends take a
 * TCP segment (header with its checksum already filled, plus payload); the kernel adds the IP header,
 * with the source address we name through IP_PKTINFO, so it matches the pseudo-header we summed.
 *
 * Why an addon: Node has no raw sockets, and no way to set IP_TTL on a TCP socket (fake TCP marks the
 * kernel's own segments with TTL 1 so a packet-filter rule can drop them).
 *
 * Reads follow the TUN addon's pattern: the fd is non-blocking and watched by uv_poll; when readable,
 * one recvmmsg fills up to BATCH_MAX slots of ONE buffer owned by JavaScript, then ONE call with the
 * count; JS reads offsets/lengths from two Uint32Arrays it owns. Nothing is allocated per packet.
 *
 * JS API:
 *   open(bindAddress|null) -> handle          throws Error with code EPERM etc.
 *   filterPort(handle, port, dst:boolean)     only segments to (dst) or from (!dst) this port are delivered
 *   start(handle, batch:ArrayBuffer, offsets:Uint32Array, lengths:Uint32Array, onBatch(count), onError(code, msg))
 *   send(handle, segment:Uint8Array, src:uint32, dst:uint32) -> bytes sent, or -errno (addresses host order)
 *   stats(handle, out:Float64Array(6))        rxPackets rxBytes txPackets txBytes rxTruncated sendErrors
 *   close(handle)
 *   setTtl(fd, ttl) -> 0 or -errno            IP_TTL on another socket (the kernel TCP connection)
 *   BATCH_MAX, SLOT                           buffer = BATCH_MAX * SLOT bytes
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH_MAX 64
/* An IPv4 header with options (60) + a TCP header with options (60) + a KCP datagram of any MTU we
 * accept (kcptun caps --mtu at 1500): a segment filling the slot is counted as truncated. */
#define SLOT 2048

typedef struct {
  napi_env env;
  int fd;
  uv_poll_t *poll;
  napi_ref on_batch, on_error, batch_ref, offsets_ref, lengths_ref, self_ref;
  napi_async_context async_ctx;
  uint8_t *batch;
  uint32_t *offsets, *lengths;
  int in_callback;
  struct mmsghdr msgs[BATCH_MAX];
  struct iovec iovs[BATCH_MAX];
  double rx_packets, rx_bytes, tx_packets, tx_bytes, rx_truncated, send_errors;
} raw_t;

#define CHECK(env, call)                                                        \
  do {                                                                          \
    if ((call) != napi_ok) {                                                    \
      napi_throw_error((env), "EINTERNAL", "rawtcp addon: N-API call failed: " #call); \
      return NULL;                                                              \
    }                                                                           \
  } while (0)

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[200];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *code = strerrorname_np(err);
  napi_throw_error(env, code ? code : "EUNKNOWN", msg);
  return NULL;
}

static napi_value throw_msg(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static raw_t *raw_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
      napi_get_value_external(env, argv[0], &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, "EINVAL", "rawtcp addon: bad handle");
    return NULL;
  }
  return p;
}

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

static void release_js(raw_t *r) {
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
static void do_close(raw_t *r) {
  if (r->poll) {
    uv_poll_stop(r->poll);
    uv_close((uv_handle_t *)r->poll, free_poll);
    r->poll = NULL;
  }
  if (r->fd >= 0) {
    close(r->fd);
    r->fd = -1;
  }
  if (!r->in_callback) release_js(r);
}

static void rethrow_pending(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
}

static void call_js(raw_t *r, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_value fn, recv;
  if (napi_get_reference_value(r->env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(r->env, &recv);
  r->in_callback++;
  if (napi_make_callback(r->env, r->async_ctx, recv, fn, argc, argv, NULL) != napi_ok) rethrow_pending(r->env);
  r->in_callback--;
  if (!r->in_callback && r->fd < 0) release_js(r);
}

static void report_error(raw_t *r, int err, const char *what) {
  if (r->poll) {
    uv_poll_stop(r->poll);
    uv_close((uv_handle_t *)r->poll, free_poll);
    r->poll = NULL;
  }
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

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  raw_t *r = h->data;
  if (status < 0) {
    report_error(r, status, "raw socket failed");
    return;
  }
  for (int i = 0; i < BATCH_MAX; i++) {
    r->iovs[i].iov_base = r->batch + (size_t)i * SLOT;
    r->iovs[i].iov_len = SLOT;
    memset(&r->msgs[i].msg_hdr, 0, sizeof r->msgs[i].msg_hdr);
    r->msgs[i].msg_hdr.msg_iov = &r->iovs[i];
    r->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int n;
  do {
    n = recvmmsg(r->fd, r->msgs, BATCH_MAX, MSG_DONTWAIT, NULL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) report_error(r, errno, "recvmmsg");
    return;
  }
  uint32_t count = 0;
  for (int i = 0; i < n; i++) {
    uint32_t len = r->msgs[i].msg_len;
    if ((r->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || len >= SLOT) {
      r->rx_truncated++;
      continue;
    }
    r->offsets[count] = (uint32_t)i * SLOT;
    r->lengths[count] = len;
    count++;
    r->rx_packets++;
    r->rx_bytes += len;
  }
  if (count == 0) return;
  napi_handle_scope scope;
  napi_open_handle_scope(r->env, &scope);
  napi_value argv[1];
  napi_create_uint32(r->env, count, &argv[0]);
  call_js(r, r->on_batch, 1, argv);
  napi_close_handle_scope(r->env, scope);
}

static void finalize_raw(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  raw_t *r = data;
  do_close(r);
  free(r);
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], handle;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  if (t == napi_string) {
    char addr[INET_ADDRSTRLEN + 1];
    size_t len = 0;
    if (napi_get_value_string_utf8(env, argv[0], addr, sizeof addr, &len) != napi_ok || len + 1 >= sizeof addr ||
        inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
      return throw_msg(env, "EINVAL", "rawtcp addon: bind address must be an IPv4 address");
  }
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return throw_errno(env, errno, "raw TCP socket");
  if (t == napi_string && bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind raw TCP socket");
  }
  /* Room for bursts while Node is descheduled; the kernel caps it at rmem_max. */
  int rcvbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  raw_t *r = calloc(1, sizeof *r);
  if (!r) {
    close(fd);
    return throw_errno(env, ENOMEM, "allocate");
  }
  r->env = env;
  r->fd = fd;
  CHECK(env, napi_create_external(env, r, finalize_raw, NULL, &handle));
  return handle;
}

static napi_value js_filter_port(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  raw_t *r = raw_args(env, info, 3, argv);
  if (!r) return NULL;
  uint32_t port;
  bool dst = true;
  if (napi_get_value_uint32(env, argv[1], &port) != napi_ok || port > 65535 || napi_get_value_bool(env, argv[2], &dst) != napi_ok)
    return throw_msg(env, "EINVAL", "rawtcp addon: filterPort(handle, port 0..65535, dst boolean)");
  /* The IPv4 header length from its first byte, then the TCP source (0) or destination (2) port behind it. */
  struct sock_filter code[] = {
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, dst ? 2 : 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffff),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  if (setsockopt(r->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) return throw_errno(env, errno, "SO_ATTACH_FILTER");
  return NULL;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  raw_t *r = raw_args(env, info, 6, argv);
  if (!r) return NULL;
  if (r->fd < 0) return throw_msg(env, "EBADF", "raw socket is closed");
  if (r->poll) return throw_msg(env, "EBUSY", "raw socket already started");
  void *batch;
  size_t batch_len, n;
  CHECK(env, napi_get_arraybuffer_info(env, argv[1], &batch, &batch_len));
  if (batch_len < (size_t)BATCH_MAX * SLOT) return throw_msg(env, "EINVAL", "rawtcp addon: batch buffer too small");
  uint32_t *offsets = typed_data(env, argv[2], napi_uint32_array, BATCH_MAX, &n, "offsets must be a Uint32Array(BATCH_MAX)");
  if (!offsets) return NULL;
  uint32_t *lengths = typed_data(env, argv[3], napi_uint32_array, BATCH_MAX, &n, "lengths must be a Uint32Array(BATCH_MAX)");
  if (!lengths) return NULL;
  napi_value resource_name;
  CHECK(env, napi_create_string_utf8(env, "RawTcpSocket", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(env, napi_async_init(env, NULL, resource_name, &r->async_ctx));
  CHECK(env, napi_create_reference(env, argv[0], 1, &r->self_ref));
  CHECK(env, napi_create_reference(env, argv[1], 1, &r->batch_ref));
  CHECK(env, napi_create_reference(env, argv[2], 1, &r->offsets_ref));
  CHECK(env, napi_create_reference(env, argv[3], 1, &r->lengths_ref));
  CHECK(env, napi_create_reference(env, argv[4], 1, &r->on_batch));
  CHECK(env, napi_create_reference(env, argv[5], 1, &r->on_error));
  r->batch = batch;
  r->offsets = offsets;
  r->lengths = lengths;
  uv_loop_t *loop;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
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

static napi_value js_send(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  raw_t *r = raw_args(env, info, 4, argv);
  if (!r) return NULL;
  size_t len;
  void *data = typed_data(env, argv[1], napi_uint8_array, 0, &len, "segment must be a Uint8Array");
  if (!data) return NULL;
  uint32_t src, dst;
  if (napi_get_value_uint32(env, argv[2], &src) != napi_ok || napi_get_value_uint32(env, argv[3], &dst) != napi_ok)
    return throw_msg(env, "EINVAL", "rawtcp addon: addresses must be uint32");
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(dst);
  struct iovec iov = {.iov_base = data, .iov_len = len};
  union {
    char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
    struct cmsghdr align;
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr msg = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &iov, .msg_iovlen = 1};
  if (src != 0) {
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
    struct in_pktinfo *pi = (struct in_pktinfo *)CMSG_DATA(c);
    pi->ipi_spec_dst.s_addr = htonl(src);
  }
  ssize_t n = -EBADF;
  if (r->fd >= 0) {
    do {
      n = sendmsg(r->fd, &msg, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) n = -errno;
  }
  if (n >= 0) {
    r->tx_packets++;
    r->tx_bytes += (double)n;
  } else {
    r->send_errors++;
  }
  CHECK(env, napi_create_int32(env, (int32_t)n, &result));
  return result;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  raw_t *r = raw_args(env, info, 2, argv);
  if (!r) return NULL;
  size_t len;
  double *out = typed_data(env, argv[1], napi_float64_array, 6, &len, "stats needs a Float64Array(6)");
  if (!out) return NULL;
  out[0] = r->rx_packets;
  out[1] = r->rx_bytes;
  out[2] = r->tx_packets;
  out[3] = r->tx_bytes;
  out[4] = r->rx_truncated;
  out[5] = r->send_errors;
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  raw_t *r = raw_args(env, info, 1, argv);
  if (!r) return NULL;
  do_close(r);
  return NULL;
}

static napi_value js_set_ttl(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd;
  uint32_t ttl;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_uint32(env, argv[1], &ttl) != napi_ok)
    return throw_msg(env, "EINVAL", "rawtcp addon: setTtl(fd, ttl)");
  int v = (int)ttl;
  int rc = setsockopt(fd, IPPROTO_IP, IP_TTL, &v, sizeof v) < 0 ? -errno : 0;
  CHECK(env, napi_create_int32(env, rc, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"filterPort", NULL, js_filter_port, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setTtl", NULL, js_set_ttl, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_value v;
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  CHECK(env, napi_create_uint32(env, BATCH_MAX, &v));
  CHECK(env, napi_set_named_property(env, exports, "BATCH_MAX", v));
  CHECK(env, napi_create_uint32(env, SLOT, &v));
  CHECK(env, napi_set_named_property(env, exports, "SLOT", v));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
