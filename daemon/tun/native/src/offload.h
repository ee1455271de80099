/*
 * TUN offloads (IFF_VNET_HDR): what the kernel's virtio_net_hdr means for one packet, and how a
 * TCP super-packet becomes ordinary packets. Pure functions over bytes, no N-API: tun.c calls them
 * on reads, and exposes them to JavaScript for the proxy's non-kernel consumers and the unit tests.
 */
#ifndef TSTIER_TUN_OFFLOAD_H
#define TSTIER_TUN_OFFLOAD_H
#include <stddef.h>
#include <stdint.h>

/* The legacy virtio_net_hdr a TUN reads and writes ahead of each packet (linux/virtio_net.h), in
 * the host's byte order (the kernel's default for a TUN without TUNSETVNETLE/BE). */
typedef struct {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
} vnet_hdr_t;

#define VNET_HDR_LEN 10

/* Completes a partial checksum (virtio NEEDS_CSUM: the field holds the pseudo-header sum, not
 * complemented) over pkt[csum_start, len). 0, or -1 when the offsets do not fit the packet. */
int offload_finish_csum(uint8_t *pkt, size_t len, uint32_t csum_start, uint32_t csum_offset);

/* Cuts an IPv4 or IPv6 TCP super-packet into segments of at most `mss` payload bytes, each a
 * complete packet with its own IP length (and IPv4 id and header checksum), sequence number, flags
 * (FIN and PSH on the last only, CWR on the first only) and full TCP checksum. The segments go to
 * out[] at 8-aligned offsets, described by offsets[]/lengths[] (room for max). Returns the count,
 * or -1 when the packet is no such TCP packet or the segments do not fit. */
int offload_segment(const uint8_t *pkt, size_t len, uint32_t mss, uint8_t *out, size_t cap, uint32_t *offsets,
                    uint32_t *lengths, uint32_t max);
#endif
