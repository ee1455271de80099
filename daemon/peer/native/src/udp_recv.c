/*
 * A UDP socket the addon owns, read in batches: node:dgram pays per datagram a 64 KiB allocation, a
 * Buffer, an address string and a JS callback (a quarter of tstier-kcptun's CPU in a bulk echo).
 * Here the fd is non-blocking and watched by uv_poll through the batch reader shared with the TUN
 * and raw TCP addons (daemon/native/napi_util.c): when readable, ONE recvmmsg fills up to `slots`
 * slots of ONE buffer owned by JavaScript, then ONE call with the count. Each slot's source address
 * is written in binary (and as text, which JS decodes only when it differs from the last one), and
 * the socket's drop counter (SO_RXQ_OVFL) rides along. Sends use udp.c's functions on the same fd.
 *
 * With UDP GRO (opened with gro): a peer's GSO send (udp-gso.ts) arrives in ONE slot as its run of
 * datagrams back to back, with the run's segment size in a UDP_GRO cmsg; each is listed in
 * offsets/lengths as a datagram of its own (every one `segment` bytes but the last), so a run costs
 * the receiver one slot and one walk of its stack, not one per datagram. The slots are then 64 KiB
 * (a whole run) and fewer, and offsets/lengths hold up to RUN_MAX entries a slot.
 *
 * Errors stay per socket: an ICMP error the kernel reports (ECONNREFUSED on a connected socket, or
 * the IP_RECVERR error queue of a listener, see icmp.c) makes epoll report POLLERR, on which libuv
 * stops the poll; it is taken with SO_ERROR, told to onError, and the poll goes on.
 *
 * JS API (registered by addon.c):
 *   udpOpen(ipv6: boolean, host: string, port, rcvbuf, sndbuf, slot, slots, gro) -> handle   throws (code EADDRINUSE...)
 *       slots <= BATCH_MAX; gro: turn UDP GRO on (Linux >= 5.0; where refused, each slot holds one datagram)
 *   udpConnect(handle, ip, port) -> 0 or -errno
 *   udpLocal(handle) -> [address, port]
 *   udpFd(handle) -> fd, or -1 once closed
 *   udpStart(handle, batch, offsets, lengths, onBatch(count), onError(code, msg))
 *       batch: slots * slot bytes of datagrams, then slots * UDP_ADDR_LEN of addresses, then a
 *       u32 (little endian): the socket's cumulative drop count when this batch was read.
 *       offsets/lengths: slots entries, or slots * RUN_MAX with gro. Datagram k came from slot
 *       offsets[k] / slot, whose address record is the slot's index in the address block.
 *       Address record (ADDR_LEN bytes): family u8 (4/6), text length u8, port u16 LE, 16 bytes of
 *       address, then the text from byte ADDR_TEXT. onError: a socket error; reading goes on.
 *   udpStats(handle, Float64Array(6)), udpClose(handle); rx packets count datagrams, not slots.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addon.h"

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
/* family, text length, port, 16 bytes of address, then up to 44 bytes of text (INET6_ADDRSTRLEN - 2). */
#define ADDR_LEN 64
#define ADDR_TEXT 20
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
/*
 * Datagrams one GRO slot may hold: the kernel coalesces up to 64 (UDP_GRO_CNT_MAX), and a local
 * sender's GSO run, handed over unsegmented, up to UDP_MAX_SEGMENTS (128 since Linux 6.12).
 */
#define RUN_MAX 128

typedef struct {
  batch_reader_t r; /* first: see reader_args */
  uint32_t slot, slots;
  uint32_t cap; /* entries in offsets/lengths */
  struct mmsghdr msgs[BATCH_MAX];
  struct iovec iovs[BATCH_MAX];
  struct sockaddr_in6 from[BATCH_MAX];
  union {
    char buf[CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(int))]; /* SO_RXQ_OVFL, UDP_GRO */
    struct cmsghdr align;
  } ctl[BATCH_MAX];
} udp_t;

static void write_addr(uint8_t *rec, const struct sockaddr_in6 *sa) {
  memset(rec, 0, ADDR_TEXT);
  const void *raw;
  int family = sa->sin6_family;
  if (family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
    raw = &v4->sin_addr;
    memcpy(rec + 4, raw, 4);
    rec[0] = 4;
  } else {
    raw = &sa->sin6_addr;
    memcpy(rec + 4, raw, 16);
    rec[0] = 6;
  }
  uint16_t port = ntohs(sa->sin6_port); /* sin_port sits at the same offset */
  rec[2] = (uint8_t)port;
  rec[3] = (uint8_t)(port >> 8);
  char text[INET6_ADDRSTRLEN];
  if (!inet_ntop(family, raw, text, sizeof text)) text[0] = 0;
  size_t n = strnlen(text, ADDR_LEN - ADDR_TEXT);
  rec[1] = (uint8_t)n;
  memcpy(rec + ADDR_TEXT, text, n);
}

/* The pending socket error (clears it), told to JS; the poll goes on unless JS closed the socket. */
static void soft_error(udp_t *u, int err) {
  batch_reader_t *r = &u->r;
  reader_report_soft(r, err ? err : EIO, "udp socket");
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  udp_t *u = h->data;
  batch_reader_t *r = &u->r;
  if (status < 0) {
    /* POLLERR: libuv stopped the poll. Take the error, report it, and poll on. */
    int err = 0;
    socklen_t len = sizeof err;
    if (r->fd < 0 || getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      reader_report_error(r, status, "udp socket failed");
      return;
    }
    soft_error(u, err);
    if (r->fd >= 0 && r->poll) uv_poll_start(r->poll, UV_READABLE, on_readable);
    return;
  }
  for (uint32_t i = 0; i < u->slots; i++) {
    u->iovs[i].iov_base = r->batch + (size_t)i * u->slot;
    u->iovs[i].iov_len = u->slot;
    struct msghdr *m = &u->msgs[i].msg_hdr;
    m->msg_name = &u->from[i];
    m->msg_namelen = sizeof u->from[i];
    m->msg_iov = &u->iovs[i];
    m->msg_iovlen = 1;
    m->msg_control = u->ctl[i].buf;
    m->msg_controllen = sizeof u->ctl[i].buf;
    m->msg_flags = 0;
  }
  int n;
  do {
    n = recvmmsg(r->fd, u->msgs, u->slots, MSG_DONTWAIT, NULL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) soft_error(u, errno);
    return;
  }
  uint8_t *addrs = r->batch + (size_t)u->slots * u->slot;
  uint32_t drops = 0, count = 0;
  for (int i = 0; i < n; i++) {
    struct msghdr *m = &u->msgs[i].msg_hdr;
    int segment = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) memcpy(&drops, CMSG_DATA(c), sizeof drops);
      else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) memcpy(&segment, CMSG_DATA(c), sizeof segment);
    }
    uint32_t len = u->msgs[i].msg_len;
    if (m->msg_flags & MSG_TRUNC) {
      r->rx_truncated++;
      continue;
    }
    write_addr(addrs + (size_t)i * ADDR_LEN, &u->from[i]);
    /* One datagram, or a GRO run cut at its segment size (the last one may be short). */
    uint32_t seg = segment > 0 && (uint32_t)segment < len ? (uint32_t)segment : len, at = 0;
    do {
      if (count == u->cap) { /* more than RUN_MAX in a slot: a kernel beyond what this reader knows */
        r->rx_truncated++;
        break;
      }
      uint32_t part = len - at < seg ? len - at : seg;
      r->offsets[count] = (uint32_t)i * u->slot + at;
      r->lengths[count] = part;
      count++;
      r->rx_packets++;
      r->rx_bytes += part;
      at += part;
    } while (at < len);
  }
  /* SO_RXQ_OVFL rides only on datagrams read after a drop: keep the highest count seen. */
  uint8_t *tail = addrs + (size_t)u->slots * ADDR_LEN;
  uint32_t before;
  memcpy(&before, tail, sizeof before);
  if (drops > before) memcpy(tail, &drops, sizeof drops);
  reader_deliver(r, count);
}

/* An IPv4 or IPv6 literal and port as a sockaddr; 0 if ip is no literal of the socket's family. */
static socklen_t literal(napi_env env, napi_value v, int32_t port, int ipv6, struct sockaddr_in6 *sa) {
  char ip[64];
  size_t ip_len;
  if (napi_get_value_string_utf8(env, v, ip, sizeof ip, &ip_len) != napi_ok) return 0;
  memset(sa, 0, sizeof *sa);
  struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
  if (!ipv6 && inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    return sizeof *v4;
  }
  if (!ipv6) return 0;
  struct in_addr a4;
  if (inet_pton(AF_INET, ip, &a4) == 1) { /* an IPv4 peer of a dual-stack socket: v4-mapped */
    sa->sin6_addr.s6_addr[10] = sa->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&sa->sin6_addr.s6_addr[12], &a4, 4);
  } else if (inet_pton(AF_INET6, ip, &sa->sin6_addr) != 1) {
    return 0;
  }
  sa->sin6_family = AF_INET6;
  sa->sin6_port = htons((uint16_t)port);
  return sizeof *sa;
}

static int is_ipv6(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  return getsockname(fd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET6;
}

napi_value udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8], handle;
  bool ipv6, gro;
  int32_t port, rcvbuf, sndbuf;
  uint32_t slot, slots;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 8 ||
      napi_get_value_bool(env, argv[0], &ipv6) != napi_ok || napi_get_value_int32(env, argv[2], &port) != napi_ok ||
      napi_get_value_int32(env, argv[3], &rcvbuf) != napi_ok || napi_get_value_int32(env, argv[4], &sndbuf) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &slot) != napi_ok || slot < 64 || slot > 65536 ||
      napi_get_value_uint32(env, argv[6], &slots) != napi_ok || slots < 1 || slots > BATCH_MAX ||
      napi_get_value_bool(env, argv[7], &gro) != napi_ok)
    return throw_msg(env, "TSTIER_E_NATIVE", "peer addon: bad arguments");
  struct sockaddr_in6 sa;
  socklen_t sa_len = literal(env, argv[1], port, ipv6, &sa);
  if (!sa_len) return throw_msg(env, "EINVAL", "udp socket: the bind address is no IP literal of its family");
  int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "udp socket", NULL);
  int on = 1, off = 0;
  if (ipv6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off); /* dual stack, as dgram's udp6 */
  setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
  if (gro) setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on); /* refused: no runs arrive, nothing lost */
  /* The kernel caps these at net.core.*mem_max, as for dgram's recvBufferSize/sendBufferSize. */
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (sndbuf > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  if (bind(fd, (struct sockaddr *)&sa, sa_len) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind udp", NULL);
  }
  udp_t *u = reader_new(env, sizeof(udp_t), fd, &handle);
  if (!u) return NULL;
  u->slot = slot;
  u->slots = slots;
  return handle;
}

napi_value udp_connect(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  batch_reader_t *r = reader_args(env, info, 3, argv);
  if (!r) return NULL;
  int32_t port;
  if (napi_get_value_int32(env, argv[2], &port) != napi_ok) return throw_msg(env, "TSTIER_E_NATIVE", "peer addon: bad arguments");
  struct sockaddr_in6 sa;
  socklen_t len = r->fd >= 0 ? literal(env, argv[1], port, is_ipv6(r->fd), &sa) : 0;
  int rc = r->fd < 0 ? -EBADF : !len ? -EAFNOSUPPORT : connect(r->fd, (struct sockaddr *)&sa, len) == 0 ? 0 : -errno;
  NAPI_CHECK(env, napi_create_int32(env, rc, &result));
  return result;
}

napi_value udp_local(napi_env env, napi_callback_info info) {
  napi_value argv[1], result, v;
  batch_reader_t *r = reader_args(env, info, 1, argv);
  if (!r) return NULL;
  struct sockaddr_in6 sa;
  socklen_t len = sizeof sa;
  if (r->fd < 0 || getsockname(r->fd, (struct sockaddr *)&sa, &len) != 0) return throw_errno(env, r->fd < 0 ? EBADF : errno, "udp socket", NULL);
  uint8_t rec[ADDR_LEN];
  write_addr(rec, &sa);
  NAPI_CHECK(env, napi_create_array_with_length(env, 2, &result));
  NAPI_CHECK(env, napi_create_string_latin1(env, (const char *)rec + ADDR_TEXT, rec[1], &v));
  NAPI_CHECK(env, napi_set_element(env, result, 0, v));
  NAPI_CHECK(env, napi_create_uint32(env, (uint32_t)rec[2] | (uint32_t)rec[3] << 8, &v));
  NAPI_CHECK(env, napi_set_element(env, result, 1, v));
  return result;
}

napi_value udp_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  batch_reader_t *r = reader_args(env, info, 1, argv);
  if (!r) return NULL;
  NAPI_CHECK(env, napi_create_int32(env, r->fd, &result));
  return result;
}

napi_value udp_start(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  udp_t *u = reader_args(env, info, 6, argv);
  if (!u) return NULL;
  size_t need = (size_t)u->slots * (u->slot + ADDR_LEN) + sizeof(uint32_t);
  void *data;
  size_t n_off = 0, n_len = 0;
  if (!typed_array_of(env, argv[2], napi_uint32_array, &data, &n_off) ||
      !typed_array_of(env, argv[3], napi_uint32_array, &data, &n_len) || n_off < u->slots || n_len < u->slots)
    return throw_msg(env, "EINVAL", "peer addon: offsets and lengths must be Uint32Arrays of at least `slots` entries");
  u->cap = n_off < n_len ? (uint32_t)n_off : (uint32_t)n_len;
  return reader_start(env, &u->r, argv, need, "udp socket", "UdpBatchSocket", on_readable);
}
