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
 * Offloads (docs/tun.md, "Offloads"): opened with `offload`, the device carries a virtio_net_hdr
 * ahead of each packet and the kernel hands us TCP super-packets of up to 64 KB (TSO) with a partial
 * checksum. A read's other packets with a partial checksum are completed here, so JS sees ordinary
 * packets plus super-packets marked by their segment size in gso[]; a super-packet stays in the batch
 * behind its header, so writeWhole can hand it back to the kernel as one packet, and segment() cuts
 * it for everyone else. Plain writes get a zeroed header (no offload). If the kernel refuses the
 * offload ioctls the device is opened again without them, and open says why.
 *
 * JS API (methods but segment/finishChecksum/slotSize take the handle returned by open):
 *   open(name|null, mtu, txQueueLen, ipv4|null, ipv4Prefix, ipv6|null, ipv6Prefix, offload)
 *     -> [handle, ifname, offloadRefused: string|null]
 *   start(handle, batchArrayBuffer, offsets:Uint32Array, lengths:Uint32Array, onBatch(count), onError(code, msg),
 *         gso:Uint32Array)   gso[i]: the super-packet's segment size, 0 for an ordinary packet
 *   write(handle, packet:Uint8Array) -> bytes written, or -errno
 *   writeWhole(handle, superPacket:Uint8Array) -> the same; superPacket is a view of the batch as delivered
 *   stats(handle, out:Float64Array(6))  rxPackets rxBytes txPackets txBytes rxDropsTruncated writeErrors
 *   offloadStats(handle, out:Float64Array(3))  superPacketsRead wholeWrites rxDropsBadHeader
 *   close(handle)
 *   slotSize(mtu, offload) -> bytes the batch buffer needs per packet (buffer = BATCH_MAX * slotSize)
 *   segment(superPacket, mss, out:Uint8Array, offsets:Uint32Array, lengths:Uint32Array) -> count, or -1
 *   finishChecksum(packet, csumStart, csumOffset) -> 0, or -1 (offsets outside the packet)
 *   originalDst(fd), markedSocket(mark), setRecvBuffer(fd, bytes): the redirect termination's socket options (sockopt.c)
 * Failures in open throw an Error whose `code` is the errno name (e.g. "EPERM").
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "napi_util.h"
#include "offload.h"
#include "sockopt.h"

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
  int vnet;         /* offloads on: a virtio_net_hdr precedes every packet read and written */
  uint32_t *gso;    /* JS's gso[] (kept alive by gso_ref) */
  napi_ref gso_ref;
  uint8_t *cut;      /* room for one super-packet's segments, allocated at the first refused writeWhole */
  double super_rx, whole_tx, bad_hdr;
} tun_t;

/* With offloads, a slot holds the header at +6 so that the packet starts 8-aligned at +16. */
#define VNET_PAD 6
#define VNET_PKT (VNET_PAD + VNET_HDR_LEN)
#define TUN_F_OFFLOADS (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
/* Bytes per batch with offloads. 64 super-packets would be 4 MB, and cutting and forwarding that
 * much in one callback held the event loop for tens of ms (plain forwarding's ACKs waited behind it);
 * without offloads a full batch is about 90 KB. */
#define VNET_BATCH_BYTES (128 * 1024)

const char addon_name[] = "tun addon";

/* Room per packet: MTU plus headroom, 8-aligned. A read that fills a whole slot may have been cut
 * short by the kernel, so it is dropped and counted instead of delivered. */
static uint32_t slot_for_mtu(uint32_t mtu) { return (mtu + 64 + 7) & ~7u; }

/* With offloads any packet may be a super-packet of up to 64 KB, whatever the MTU. */
static uint32_t slot_for(uint32_t mtu, int vnet) { return vnet ? slot_for_mtu(VNET_PKT + 65535) : slot_for_mtu(mtu); }

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

/* A packet read with offloads: its header checked, a partial checksum completed unless it is a TCP
 * super-packet (kept whole for JS). Returns the packet's segment size (0: ordinary), or -1 to drop it. */
static int vnet_accept(tun_t *t, uint8_t *pkt, size_t len) {
  vnet_hdr_t h;
  memcpy(&h, pkt - VNET_HDR_LEN, sizeof h);
  int gso = h.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
  if (gso == VIRTIO_NET_HDR_GSO_NONE) {
    if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && offload_finish_csum(pkt, len, h.csum_start, h.csum_offset) < 0) return -1;
    return 0;
  }
  if ((gso != VIRTIO_NET_HDR_GSO_TCPV4 && gso != VIRTIO_NET_HDR_GSO_TCPV6) || h.gso_size == 0) return -1;
  t->super_rx++;
  return h.gso_size;
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
  /* What read() fills: the whole slot, or the header and packet behind the alignment pad. */
  size_t skip = t->vnet ? VNET_PAD : 0, lead = t->vnet ? VNET_HDR_LEN : 0, room = t->slot - skip;
  /* off never passes (BATCH_MAX - 1) * slot: each kept packet advances it by at most one slot.
   * Reads are capped too, so a stream of oversized (dropped) packets cannot hold the loop. */
  size_t budget = t->vnet ? VNET_BATCH_BYTES : SIZE_MAX;
  for (int reads = 0; count < BATCH_MAX && reads < 2 * BATCH_MAX && off < budget; reads++) {
    ssize_t n = read(r->fd, r->batch + off + skip, room);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    if (n == 0) break;
    if ((size_t)n >= room) {
      r->rx_truncated++;
      continue;
    }
    if ((size_t)n <= lead) {
      t->bad_hdr++;
      continue;
    }
    uint8_t *pkt = r->batch + off + skip + lead;
    size_t len = (size_t)n - lead;
    int gso = t->vnet ? vnet_accept(t, pkt, len) : 0;
    if (gso < 0) {
      t->bad_hdr++;
      continue;
    }
    r->offsets[count] = (uint32_t)(off + skip + lead);
    r->lengths[count] = (uint32_t)len;
    t->gso[count] = (uint32_t)gso;
    count++;
    r->rx_packets++;
    r->rx_bytes += (double)len;
    off += (skip + (size_t)n + 7) & ~(size_t)7;
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

/* TUNSETIFF, with the virtio header and TSO when `vnet`. Returns the fd (non-blocking), or -errno;
 * *refused names the offload ioctl the kernel refused (the fd is then opened without offloads). */
static int open_tun(struct ifreq *ifr, int vnet, const char **refused) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct ifreq req = *ifr;
  req.ifr_flags = (short)(IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0));
  if (ioctl(fd, TUNSETIFF, &req) < 0) {
    int err = errno;
    close(fd);
    /* An old kernel without IFF_VNET_HDR says EINVAL: try once more without it. */
    if (vnet && err == EINVAL) {
      *refused = "TUNSETIFF with IFF_VNET_HDR";
      return open_tun(ifr, 0, refused);
    }
    return -err;
  }
  int hdr = VNET_HDR_LEN;
  if (vnet && (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(fd, TUNSETOFFLOAD, (unsigned long)TUN_F_OFFLOADS) < 0)) {
    *refused = "TUNSETOFFLOAD";
    close(fd); /* the device is not persistent: closing removes it, and it is created again plain */
    return open_tun(ifr, 0, refused);
  }
  *ifr = req;
  return fd;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) return throw_msg(env, "EINVAL", "tun addon: open needs 8 arguments");
  bool want_offload = false;
  NAPI_CHECK(env, napi_get_value_bool(env, argv[7], &want_offload));

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

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (has_name) memcpy(ifr.ifr_name, name, IFNAMSIZ);
  const char *refused = NULL;
  int fd = open_tun(&ifr, want_offload, &refused);
  if (fd < 0) return throw_errno(env, -fd, "TUNSETIFF", has_name ? name : NULL);
  int vnet = (ifr.ifr_flags & IFF_VNET_HDR) != 0;
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

  napi_value handle, ifname_v, refused_v, result;
  tun_t *t = reader_new(env, sizeof *t, fd, &handle);
  if (!t) return NULL;
  t->vnet = vnet;
  t->slot = slot_for(mtu, vnet);
  NAPI_CHECK(env, napi_create_string_utf8(env, ifname, NAPI_AUTO_LENGTH, &ifname_v));
  if (refused) NAPI_CHECK(env, napi_create_string_utf8(env, refused, NAPI_AUTO_LENGTH, &refused_v));
  else NAPI_CHECK(env, napi_get_null(env, &refused_v));
  NAPI_CHECK(env, napi_create_array_with_length(env, 3, &result));
  NAPI_CHECK(env, napi_set_element(env, result, 0, handle));
  NAPI_CHECK(env, napi_set_element(env, result, 1, ifname_v));
  NAPI_CHECK(env, napi_set_element(env, result, 2, refused_v));
  return result;

fail:
  close(sock);
  close(fd);
  return throw_errno(env, err, step, ifname);
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  tun_t *t = reader_args(env, info, 7, argv);
  if (!t) return NULL;
  size_t n;
  uint32_t *gso = typed_data(env, argv[6], napi_uint32_array, BATCH_MAX, &n, "gso must be a Uint32Array(BATCH_MAX)");
  if (!gso) return NULL;
  napi_value r = reader_start(env, &t->r, argv, (size_t)BATCH_MAX * t->slot, "TUN device", "TunDevice", on_readable);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending || !t->r.poll) return r;
  NAPI_CHECK(env, napi_create_reference(env, argv[6], 1, &t->gso_ref));
  t->gso = gso;
  return r;
}

static napi_value write_result(napi_env env, batch_reader_t *r, ssize_t n) {
  return reader_tx_result(env, r, n < 0 ? -errno : n);
}

static ssize_t write_plain(tun_t *t, const void *data, size_t len) {
  /* One packet per call: a TUN takes each write (writev too) as one packet, which is how the
   * zeroed header (no offload) and the packet go together. A closed device's fd is -1: EBADF. */
  static const uint8_t no_offload[VNET_HDR_LEN];
  struct iovec iov[2] = {{(void *)no_offload, VNET_HDR_LEN}, {(void *)data, len}};
  ssize_t n;
  do {
    n = t->vnet ? writev(t->r.fd, iov, 2) : write(t->r.fd, data, len);
  } while (n < 0 && errno == EINTR);
  return n > 0 && t->vnet ? n - VNET_HDR_LEN : n;
}

/* The kernel refused a super-packet whole (it has not been seen to): it goes as segments instead,
 * so the flow does not stall on a sender that would retransmit the same super-packet. */
#define CUT_MAX 1024
#define CUT_ROOM (65536 + CUT_MAX * 128)
static ssize_t write_cut(tun_t *t, const uint8_t *pkt, size_t len) {
  static uint32_t offsets[CUT_MAX], lengths[CUT_MAX];
  vnet_hdr_t h;
  memcpy(&h, pkt - VNET_HDR_LEN, sizeof h);
  if (!t->cut && !(t->cut = malloc(CUT_ROOM))) return -1;
  int count = offload_segment(pkt, len, h.gso_size, t->cut, CUT_ROOM, offsets, lengths, CUT_MAX);
  if (count < 0) {
    errno = EINVAL;
    return -1;
  }
  for (int i = 0; i < count; i++) {
    if (write_plain(t, t->cut + offsets[i], lengths[i]) < 0) return -1;
  }
  return (ssize_t)len;
}

static napi_value js_write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  tun_t *t = reader_args(env, info, 2, argv);
  if (!t) return NULL;
  size_t len;
  void *data = typed_data(env, argv[1], napi_uint8_array, 0, &len, "packet must be a Uint8Array");
  if (!data) return NULL;
  return write_result(env, &t->r, write_plain(t, data, len));
}

static napi_value js_write_whole(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  tun_t *t = reader_args(env, info, 2, argv);
  if (!t) return NULL;
  napi_typedarray_type ty;
  size_t len, at;
  void *data;
  napi_value ab;
  if (napi_get_typedarray_info(env, argv[1], &ty, &len, &data, &ab, &at) != napi_ok || ty != napi_uint8_array ||
      !t->vnet || at < VNET_HDR_LEN)
    return throw_msg(env, "EINVAL", "writeWhole takes a super-packet as read, on a device with offloads");
  ssize_t n;
  do {
    n = write(t->r.fd, (uint8_t *)data - VNET_HDR_LEN, len + VNET_HDR_LEN);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    n -= VNET_HDR_LEN;
    t->whole_tx++;
  } else if (n < 0 && errno == EINVAL) {
    n = write_cut(t, data, len);
  }
  return write_result(env, &t->r, n);
}

static napi_value js_segment(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], result;
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *pkt, *out;
  size_t len, cap, n_off, n_len;
  uint32_t mss;
  if (argc < 5 || !bytes_of(env, argv[0], &pkt, &len) || napi_get_value_uint32(env, argv[1], &mss) != napi_ok ||
      !bytes_of(env, argv[2], &out, &cap))
    return throw_msg(env, "EINVAL", "segment(packet, mss, out, offsets, lengths)");
  uint32_t *offsets = typed_data(env, argv[3], napi_uint32_array, 1, &n_off, "offsets must be a Uint32Array");
  if (!offsets) return NULL;
  uint32_t *lengths = typed_data(env, argv[4], napi_uint32_array, n_off, &n_len, "lengths must be as long as offsets");
  if (!lengths) return NULL;
  int count = offload_segment(pkt, len, mss, out, cap, offsets, lengths, (uint32_t)n_off);
  NAPI_CHECK(env, napi_create_int32(env, count, &result));
  return result;
}

static napi_value js_finish_checksum(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *pkt;
  size_t len;
  uint32_t start, offset;
  if (argc < 3 || !bytes_of(env, argv[0], &pkt, &len) || napi_get_value_uint32(env, argv[1], &start) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &offset) != napi_ok)
    return throw_msg(env, "EINVAL", "finishChecksum(packet, csumStart, csumOffset)");
  NAPI_CHECK(env, napi_create_int32(env, offload_finish_csum(pkt, len, start, offset), &result));
  return result;
}

static napi_value js_offload_stats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  tun_t *t = reader_args(env, info, 2, argv);
  if (!t) return NULL;
  size_t len;
  double *out = typed_data(env, argv[1], napi_float64_array, 3, &len, "offloadStats needs a Float64Array(3)");
  if (!out) return NULL;
  out[0] = t->super_rx;
  out[1] = t->whole_tx;
  out[2] = t->bad_hdr;
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  tun_t *t = reader_args(env, info, 1, argv);
  if (!t) return NULL;
  napi_value r = reader_js_close(env, info);
  free(t->cut);
  t->cut = NULL;
  /* Polling has stopped, so nothing writes gso[] any more. */
  if (t->gso_ref) {
    napi_delete_reference(env, t->gso_ref);
    t->gso_ref = NULL;
    t->gso = NULL;
  }
  return r;
}

static napi_value js_slot_size(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  uint32_t mtu;
  bool vnet = false;
  NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  NAPI_CHECK(env, napi_get_value_uint32(env, argv[0], &mtu));
  if (argc > 1) NAPI_CHECK(env, napi_get_value_bool(env, argv[1], &vnet));
  NAPI_CHECK(env, napi_create_uint32(env, slot_for(mtu, vnet), &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      NAPI_METHOD("open", js_open),
      NAPI_METHOD("start", js_start),
      NAPI_METHOD("write", js_write),
      NAPI_METHOD("writeWhole", js_write_whole),
      NAPI_METHOD("stats", reader_js_stats),
      NAPI_METHOD("offloadStats", js_offload_stats),
      NAPI_METHOD("close", js_close),
      NAPI_METHOD("slotSize", js_slot_size),
      NAPI_METHOD("segment", js_segment),
      NAPI_METHOD("finishChecksum", js_finish_checksum),
      NAPI_METHOD("originalDst", js_original_dst),
      NAPI_METHOD("markedSocket", js_marked_socket),
      NAPI_METHOD("setRecvBuffer", js_set_recv_buffer),
  };
  return reader_exports(env, exports, props, sizeof props / sizeof props[0]);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
