/*
 * tstier TUN addon: opens a Linux TUN device, configures it with ioctls and delivers the packets
 * it reads to JavaScript in batches.
 *
 * Why an addon: plain Node cannot issue TUNSETIFF, and reading a TUN fd through Node's thread pool
 * is slow and reorders packets. Here the fd is non-blocking and watched by uv_poll on the main loop;
 * when readable we read() until EAGAIN or BATCH_MAX packets, packing them into ONE buffer owned by
 * JavaScript, then make ONE call with the count. JS reads offsets/lengths from two Uint32Arrays it
 * also owns. Nothing is allocated per packet or per batch (docs/tun.md has the measurements); the
 * batch reader is shared with the raw TCP addon (daemon/native/napi_util.c).
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
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "napi_util.h"

/* Layout of the kernel's struct in6_ifreq (linux/ipv6.h), declared here because that header
 * clashes with glibc's netinet/in.h. */
struct tt_in6_ifreq {
  struct in6_addr addr;
  uint32_t prefixlen;
  int ifindex;
};

typedef struct {
  batch_reader_t r; /* first: see reader_args */
  uint32_t slot;
} tun_t;

const char addon_name[] = "tun addon";

/* Room per packet: MTU plus headroom, 8-aligned. A read that fills a whole slot may have been cut
 * short by the kernel, so it is dropped and counted instead of delivered. */
static uint32_t slot_for_mtu(uint32_t mtu) { return (mtu + 64 + 7) & ~7u; }

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

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  tun_t *t = h->data;
  batch_reader_t *r = &t->r;
  if (status < 0) {
    /* libuv reports EPOLLERR as UV_EBADF; for a TUN that means the interface went away. */
    reader_report_error(r, status, "device failed (interface deleted?)");
    return;
  }
  uint32_t count = 0;
  size_t off = 0;
  int err = 0;
  /* off never passes (BATCH_MAX - 1) * slot: each kept packet advances it by at most one slot.
   * Reads are capped too, so a stream of oversized (dropped) packets cannot hold the loop. */
  for (int reads = 0; count < BATCH_MAX && reads < 2 * BATCH_MAX; reads++) {
    ssize_t n = read(r->fd, r->batch + off, t->slot);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    if (n == 0) break;
    if ((uint32_t)n >= t->slot) {
      r->rx_truncated++;
      continue;
    }
    r->offsets[count] = (uint32_t)off;
    r->lengths[count] = (uint32_t)n;
    count++;
    r->rx_packets++;
    r->rx_bytes += (double)n;
    off += ((size_t)n + 7) & ~(size_t)7;
  }
  reader_deliver(r, count);
  /* The callback may have closed the device; only a still-open device reports its read error. */
  if (err && r->fd >= 0) reader_report_error(r, err, "read failed");
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

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
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

  napi_value handle, ifname_v, result;
  tun_t *t = reader_new(env, sizeof *t, fd, &handle);
  if (!t) return NULL;
  t->slot = slot_for_mtu(mtu);
  NAPI_CHECK(env, napi_create_string_utf8(env, ifname, NAPI_AUTO_LENGTH, &ifname_v));
  NAPI_CHECK(env, napi_create_array_with_length(env, 2, &result));
  NAPI_CHECK(env, napi_set_element(env, result, 0, handle));
  NAPI_CHECK(env, napi_set_element(env, result, 1, ifname_v));
  return result;

fail:
  close(sock);
  close(fd);
  return throw_errno(env, err, step, ifname);
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  tun_t *t = reader_args(env, info, 6, argv);
  if (!t) return NULL;
  return reader_start(env, &t->r, argv, (size_t)BATCH_MAX * t->slot, "TUN device", "TunDevice", on_readable);
}

static napi_value js_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  batch_reader_t *r = reader_args(env, info, 2, argv);
  if (!r) return NULL;
  size_t len;
  void *data = typed_data(env, argv[1], napi_uint8_array, 0, &len, "packet must be a Uint8Array");
  if (!data) return NULL;
  /* One write per packet: writev on a TUN would merge pieces into a single packet. A closed
   * device's fd is -1, so the write fails with EBADF. */
  ssize_t n;
  do {
    n = write(r->fd, data, len);
  } while (n < 0 && errno == EINTR);
  return reader_tx_result(env, r, n < 0 ? -errno : n);
}

static napi_value js_slot_size(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  uint32_t mtu;
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  NAPI_CHECK(env, napi_get_value_uint32(env, argv[0], &mtu));
  NAPI_CHECK(env, napi_create_uint32(env, slot_for_mtu(mtu), &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      NAPI_METHOD("open", js_open),
      NAPI_METHOD("start", js_start),
      NAPI_METHOD("write", js_write),
      NAPI_METHOD("stats", reader_js_stats),
      NAPI_METHOD("close", reader_js_close),
      NAPI_METHOD("slotSize", js_slot_size),
  };
  return reader_exports(env, exports, props, sizeof props / sizeof props[0]);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
