/*
 * Sends a run of datagrams with ONE sendmsg using UDP GSO (UDP_SEGMENT, Linux >= 4.18): the
 * datagrams go down the stack as one buffer and are cut back into the very same datagrams at
 * the device (or at the receiving socket on veth/loopback). A plain send costs a syscall and a
 * full stack traversal per datagram, most of a sending node's CPU at speed.
 *
 * The receiving side's counterpart, UDP GRO: a socket with it set gets such a run (arriving whole
 * over veth/loopback, or coalesced by the NIC's GRO) as ONE message, datagrams back to back.
 *
 * JS API (registered by addon.c):
 *   udpSendRun(fd, datagrams: Uint8Array[], first, count, segment, ip: string|null, port) -> n
 *       sends datagrams[first .. first+count) as one GSO send of `segment`-byte segments: each one
 *       is exactly `segment` bytes but the last, which may be shorter. ip/port for an unconnected
 *       socket, null/0 for a connected one. n: bytes sent, or -errno (nothing was sent), e.g. -EIO
 *       or -ENOPROTOOPT where GSO is unsupported, -EINVAL for a segment over the path MTU,
 *       -EAFNOSUPPORT for an ip that is no IPv4/IPv6 literal.
 *   udpSendMany(fd, datagrams: Uint8Array[], first, count, ip: string|null, port) -> n
 *       sends datagrams[first .. first+count) (any sizes, count <= 64) with ONE sendmmsg: the
 *       syscall and the JS-to-kernel crossing are paid once, the stack is still walked per datagram
 *       (for where GSO is off). n: how many went, in order (the rest did not: the socket buffer is
 *       full), or -errno when none did.
 *   udpOffloads(fd, gro) -> bits: 1 = GSO sends work here (Linux >= 4.18; older kernels would ignore
 *       the cmsg and send a run as ONE datagram, so never try blind), 2 = GRO is now on (>= 5.0;
 *       only asked for when gro is true: a reader that takes one datagram a slot must not get runs)
 *   udpDrops(fd) -> n: datagrams the kernel dropped for this socket since it was made (its
 *       receive buffer full, mostly: the host did not read in time), from SO_MEMINFO's
 *       SK_MEMINFO_DROPS (Linux >= 4.6; the socket's own counter, where /proc/net/snmp's
 *       RcvbufErrors is the namespace's); -errno where the kernel does not say. One syscall,
 *       no cmsg on every receive (SO_RXQ_OVFL's way, which dgram would not pass through).
 */
/* sendmmsg */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "addon.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
/* The kernel's UDP_MAX_SEGMENTS. */
#define MAX_SEGMENTS 64
/* Datagrams per udpSendMany call (the kernel takes up to UIO_MAXIOV = 1024). */
#define MAX_MANY 64

/*
 * The destination `ip` (a string, or null for a connected socket: *to_len = 0) and `port` as a
 * sockaddr: 0, or 1 when ip is no IPv4/IPv6 literal, or -1 with a JS error thrown.
 */
static int destination(napi_env env, napi_value ip_val, int32_t port, struct sockaddr_storage *to, socklen_t *to_len) {
  napi_valuetype ip_type;
  *to_len = 0;
  if (napi_typeof(env, ip_val, &ip_type) != napi_ok) goto bad_args;
  if (ip_type != napi_string) return 0;
  char ip[64];
  size_t ip_len;
  if (napi_get_value_string_utf8(env, ip_val, ip, sizeof ip, &ip_len) != napi_ok) goto bad_args;
  memset(to, 0, sizeof *to);
  struct sockaddr_in *v4 = (struct sockaddr_in *)to;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)to;
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *to_len = sizeof *v4;
  } else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    *to_len = sizeof *v6;
  } else {
    return 1;
  }
  return 0;
bad_args:
  napi_throw_error(env, "TSTIER_E_NATIVE", "peer addon: bad arguments");
  return -1;
}

napi_value udp_send_run(napi_env env, napi_callback_info info) {
  napi_value argv[7], result, item;
  int32_t fd, port;
  uint32_t first, count, segment;
  if (!fd_args(env, info, 7, argv, &fd)) return NULL;
  CHECK(napi_get_value_uint32(env, argv[2], &first));
  CHECK(napi_get_value_uint32(env, argv[3], &count));
  CHECK(napi_get_value_uint32(env, argv[4], &segment));
  CHECK(napi_get_value_int32(env, argv[6], &port));
  if (count < 1 || count > MAX_SEGMENTS || segment < 1 || segment > UINT16_MAX) CHECK(napi_invalid_arg);

  struct iovec iov[MAX_SEGMENTS];
  for (uint32_t i = 0; i < count; i++) {
    uint8_t *p;
    size_t len;
    CHECK(napi_get_element(env, argv[1], first + i, &item));
    if (!bytes_of(env, item, &p, &len)) CHECK(napi_invalid_arg);
    if (len > segment || (len < segment && i + 1 < count)) CHECK(napi_invalid_arg);
    iov[i].iov_base = p;
    iov[i].iov_len = len;
  }

  struct sockaddr_storage to;
  socklen_t to_len;
  int bad = destination(env, argv[5], port, &to, &to_len);
  if (bad < 0) return NULL;
  if (bad > 0) {
    CHECK(napi_create_int32(env, -EAFNOSUPPORT, &result));
    return result;
  }

  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = {0};
  msg.msg_name = to_len ? &to : NULL;
  msg.msg_namelen = to_len;
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  if (count > 1) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg = (uint16_t)segment;
    memcpy(CMSG_DATA(cm), &seg, sizeof seg);
  }
  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, n < 0 ? -errno : (int32_t)n, &result));
  return result;
}

napi_value udp_send_many(napi_env env, napi_callback_info info) {
  napi_value argv[6], result, item;
  int32_t fd, port;
  uint32_t first, count;
  if (!fd_args(env, info, 6, argv, &fd)) return NULL;
  CHECK(napi_get_value_uint32(env, argv[2], &first));
  CHECK(napi_get_value_uint32(env, argv[3], &count));
  CHECK(napi_get_value_int32(env, argv[5], &port));
  if (count < 1 || count > MAX_MANY) CHECK(napi_invalid_arg);

  struct sockaddr_storage to;
  socklen_t to_len;
  int bad = destination(env, argv[4], port, &to, &to_len);
  if (bad < 0) return NULL;
  if (bad > 0) {
    CHECK(napi_create_int32(env, -EAFNOSUPPORT, &result));
    return result;
  }
  struct iovec iov[MAX_MANY];
  struct mmsghdr msgs[MAX_MANY];
  memset(msgs, 0, count * sizeof msgs[0]);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t *p;
    size_t len;
    CHECK(napi_get_element(env, argv[1], first + i, &item));
    if (!bytes_of(env, item, &p, &len)) CHECK(napi_invalid_arg);
    iov[i].iov_base = p;
    iov[i].iov_len = len;
    msgs[i].msg_hdr.msg_name = to_len ? &to : NULL;
    msgs[i].msg_hdr.msg_namelen = to_len;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int n;
  do {
    n = sendmmsg(fd, msgs, count, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  CHECK(napi_create_int32(env, n < 0 ? -errno : n, &result));
  return result;
}

napi_value udp_offloads(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  int32_t fd;
  bool gro;
  if (!fd_args(env, info, 2, argv, &fd)) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &gro));
  int segment = 0, on = 1;
  socklen_t len = sizeof segment;
  int bits = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &segment, &len) == 0 ? 1 : 0;
  if (gro && setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0) bits |= 2;
  CHECK(napi_create_int32(env, bits, &result));
  return result;
}

napi_value udp_drops(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  int32_t fd;
  if (!fd_args(env, info, 1, argv, &fd)) return NULL;
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t len = sizeof mem;
  int64_t n;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0) n = -(int64_t)errno;
  else if (len <= SK_MEMINFO_DROPS * sizeof mem[0]) n = -ENOPROTOOPT; /* a kernel before the counter */
  else n = mem[SK_MEMINFO_DROPS];
  CHECK(napi_create_int64(env, n, &result));
  return result;
}
