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
 * Reads go through the batch reader shared with the TUN addon (daemon/native/napi_util.c): the fd is
 * non-blocking and watched by uv_poll; when readable, one recvmmsg fills up to BATCH_MAX slots of ONE
 * buffer owned by JavaScript, then ONE call with the count; JS reads offsets/lengths from two
 * Uint32Arrays it owns. Nothing is allocated per packet.
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
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "napi_util.h"

/* An IPv4 header with options (60) + a TCP header with options (60) + a KCP datagram of any MTU we
 * accept (kcptun caps --mtu at 1500): a segment filling the slot is counted as truncated. */
#define SLOT 2048

typedef struct {
  batch_reader_t r; /* first: see reader_args */
  struct mmsghdr msgs[BATCH_MAX];
  struct iovec iovs[BATCH_MAX];
} raw_t;

const char addon_name[] = "rawtcp addon";

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  raw_t *raw = h->data;
  batch_reader_t *r = &raw->r;
  if (status < 0) {
    reader_report_error(r, status, "raw socket failed");
    return;
  }
  for (int i = 0; i < BATCH_MAX; i++) {
    raw->iovs[i].iov_base = r->batch + (size_t)i * SLOT;
    raw->iovs[i].iov_len = SLOT;
    memset(&raw->msgs[i].msg_hdr, 0, sizeof raw->msgs[i].msg_hdr);
    raw->msgs[i].msg_hdr.msg_iov = &raw->iovs[i];
    raw->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int n;
  do {
    n = recvmmsg(r->fd, raw->msgs, BATCH_MAX, MSG_DONTWAIT, NULL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) reader_report_error(r, errno, "recvmmsg");
    return;
  }
  uint32_t count = 0;
  for (int i = 0; i < n; i++) {
    uint32_t len = raw->msgs[i].msg_len;
    if ((raw->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) || len >= SLOT) {
      r->rx_truncated++;
      continue;
    }
    r->offsets[count] = (uint32_t)i * SLOT;
    r->lengths[count] = len;
    count++;
    r->rx_packets++;
    r->rx_bytes += len;
  }
  reader_deliver(r, count);
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], handle;
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
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
  if (fd < 0) return throw_errno(env, errno, "raw TCP socket", NULL);
  if (t == napi_string && bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind raw TCP socket", NULL);
  }
  /* Room for bursts while Node is descheduled; the kernel caps it at rmem_max. */
  int rcvbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  return reader_new(env, sizeof(raw_t), fd, &handle) ? handle : NULL;
}

static napi_value js_filter_port(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  batch_reader_t *r = reader_args(env, info, 3, argv);
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
  if (setsockopt(r->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) return throw_errno(env, errno, "SO_ATTACH_FILTER", NULL);
  return NULL;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  batch_reader_t *r = reader_args(env, info, 6, argv);
  if (!r) return NULL;
  return reader_start(env, r, argv, (size_t)BATCH_MAX * SLOT, "raw socket", "RawTcpSocket", on_readable);
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  batch_reader_t *r = reader_args(env, info, 4, argv);
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
  /* A closed socket's fd is -1, so the send fails with EBADF. */
  ssize_t n;
  do {
    n = sendmsg(r->fd, &msg, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return reader_tx_result(env, r, n < 0 ? -errno : n);
}

static napi_value js_set_ttl(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd;
  uint32_t ttl;
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_uint32(env, argv[1], &ttl) != napi_ok)
    return throw_msg(env, "EINVAL", "rawtcp addon: setTtl(fd, ttl)");
  int v = (int)ttl;
  int rc = setsockopt(fd, IPPROTO_IP, IP_TTL, &v, sizeof v) < 0 ? -errno : 0;
  NAPI_CHECK(env, napi_create_int32(env, rc, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      NAPI_METHOD("open", js_open),
      NAPI_METHOD("filterPort", js_filter_port),
      NAPI_METHOD("start", js_start),
      NAPI_METHOD("send", js_send),
      NAPI_METHOD("stats", reader_js_stats),
      NAPI_METHOD("close", reader_js_close),
      NAPI_METHOD("setTtl", js_set_ttl),
  };
  napi_value v;
  if (!reader_exports(env, exports, props, sizeof props / sizeof props[0])) return NULL;
  NAPI_CHECK(env, napi_create_uint32(env, SLOT, &v));
  NAPI_CHECK(env, napi_set_named_property(env, exports, "SLOT", v));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
