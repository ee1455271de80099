/*
 * Which peers' ports refused us, for a listening UDP socket. A dialler's socket is connected, so the
 * kernel reports an ICMP port unreachable to it as ECONNREFUSED; a listener's socket serves many
 * peers and is not connected, so without IP_RECVERR the kernel drops such reports, and a peer killed
 * with -9 would look like a mere outage until its session's dead timer. With IP_RECVERR the reports
 * queue on the socket's error queue, where the original destination (the peer's address and port)
 * says whose port refused.
 *
 * JS API (registered by addon.c):
 *   udpRecvErrors(fd, ipv6: boolean) -> 0 or -errno: turns the error queue on (IPv6 sockets also get
 *       IP_RECVERR, for IPv4-mapped peers).
 *   udpTakeRefused(fd) -> [address, port, address, port, ...]: drains the error queue (at most 256
 *       reports a call) and returns the peers that answered "port unreachable". Must be called when
 *       the socket reports an error, or the queue holds receive-buffer memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "addon.h"

#define MAX_REPORTS 256

napi_value udp_recv_errors(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  int32_t fd;
  bool ipv6;
  if (!fd_args(env, info, 2, argv, &fd)) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &ipv6));
  int on = 1, rc = 0;
  if (ipv6 && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on) != 0) rc = -errno;
  if (rc == 0 && setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on) != 0 && !ipv6) rc = -errno;
  CHECK(napi_create_int32(env, rc, &result));
  return result;
}

napi_value udp_take_refused(napi_env env, napi_callback_info info) {
  napi_value argv[1], result, item;
  int32_t fd;
  if (!fd_args(env, info, 1, argv, &fd)) return NULL;
  CHECK(napi_create_array(env, &result));
  uint32_t n = 0;
  for (int i = 0; i < MAX_REPORTS; i++) {
    struct sockaddr_storage from;
    char data[64], control[512];
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control, .msg_controllen = sizeof control};
    if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break; /* EAGAIN: drained */
    int refused = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (!((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
            (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR))) continue;
      struct sock_extended_err err;
      memcpy(&err, CMSG_DATA(c), sizeof err);
      if ((err.ee_origin == SO_EE_ORIGIN_ICMP || err.ee_origin == SO_EE_ORIGIN_ICMP6) && err.ee_errno == ECONNREFUSED) refused = 1;
    }
    if (!refused) continue;
    char text[INET6_ADDRSTRLEN];
    int port;
    if (from.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&from;
      inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      port = ntohs(a->sin_port);
    } else if (from.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&from;
      inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      port = ntohs(a->sin6_port);
    } else {
      continue;
    }
    CHECK(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &item));
    CHECK(napi_set_element(env, result, n++, item));
    CHECK(napi_create_int32(env, port, &item));
    CHECK(napi_set_element(env, result, n++, item));
  }
  return result;
}
