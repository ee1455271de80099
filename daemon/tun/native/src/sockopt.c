/*
 * Socket options for the redirect termination (daemon/intercept/redirect/, docs/userspace-stack.md):
 * the two calls Node has no API for. They live in the TUN addon because the redirect mode runs only
 * where the TUN addon does, and a third addon would be a third build for two syscalls.
 *
 *   originalDst(fd) -> [ipv4 as u32, port] | null
 *       the destination an iptables REDIRECT rewrote (getsockopt SO_ORIGINAL_DST on an accepted
 *       socket); null when the connection was not redirected (ENOENT: e.g. a local process that
 *       connected to the listener directly)
 *   markedSocket(mark) -> fd
 *       a new non-blocking IPv4 TCP socket carrying SO_MARK `mark`, not yet connected, for
 *       `new net.Socket({ fd })` and connect(): the daemon's own dials are exempt from redirection
 *       by this mark, which must be on the socket before its SYN leaves
 *   setRecvBuffer(fd, bytes)
 *       SO_RCVBUF on a socket (the kernel doubles it for its overhead, and stops autotuning it); on a
 *       listening socket, every connection it accepts afterwards inherits it
 * Failures throw an Error whose `code` is the errno name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "napi_util.h"
#include "sockopt.h"

/* linux/netfilter_ipv4.h's value; that header clashes with glibc's netinet/in.h. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif

napi_value js_original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, ip_v, port_v;
  int32_t fd;
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    return throw_msg(env, "EINVAL", "originalDst(fd) needs a socket descriptor");
  }
  struct sockaddr_in dst;
  socklen_t len = sizeof dst;
  memset(&dst, 0, sizeof dst);
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0) {
    if (errno == ENOENT) {
      NAPI_CHECK(env, napi_get_null(env, &result));
      return result;
    }
    return throw_errno(env, errno, "getsockopt(SO_ORIGINAL_DST)", NULL);
  }
  NAPI_CHECK(env, napi_create_uint32(env, ntohl(dst.sin_addr.s_addr), &ip_v));
  NAPI_CHECK(env, napi_create_uint32(env, ntohs(dst.sin_port), &port_v));
  NAPI_CHECK(env, napi_create_array_with_length(env, 2, &result));
  NAPI_CHECK(env, napi_set_element(env, result, 0, ip_v));
  NAPI_CHECK(env, napi_set_element(env, result, 1, port_v));
  return result;
}

napi_value js_marked_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  uint32_t mark;
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &mark) != napi_ok) {
    return throw_msg(env, "EINVAL", "markedSocket(mark) needs a number");
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", NULL);
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "setsockopt(SO_MARK)", NULL);
  }
  NAPI_CHECK(env, napi_create_int32(env, fd, &result));
  return result;
}

napi_value js_set_recv_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd, bytes;
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_int32(env, argv[1], &bytes) != napi_ok || bytes <= 0) {
    return throw_msg(env, "EINVAL", "setRecvBuffer(fd, bytes) needs a socket descriptor and a size");
  }
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) != 0) return throw_errno(env, errno, "setsockopt(SO_RCVBUF)", NULL);
  NAPI_CHECK(env, napi_get_undefined(env, &result));
  return result;
}
