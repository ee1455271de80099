/*
 * TUN offloads: completing partial checksums and cutting TCP super-packets (see offload.h).
 *
 * Sums are taken over the bytes as they lie in memory, 32 bits at a time: the ones' complement sum
 * does not depend on byte order (RFC 1071 §2(B)), so a sum folded to 16 bits and stored back as it
 * is lands in network order. Values that are not packet bytes (the protocol, a length) are added in
 * network order (htons) for the same reason.
 */
#include "offload.h"

#include <arpa/inet.h>
#include <string.h>

#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static uint64_t sum_bytes(const uint8_t *p, size_t n, uint64_t acc) {
  for (; n >= 4; p += 4, n -= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    acc += w;
  }
  if (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    acc += w;
    p += 2;
    n -= 2;
  }
  if (n) {
    uint16_t w = 0; /* an odd last byte is the high byte of a word padded with zero */
    memcpy(&w, p, 1);
    acc += w;
  }
  return acc;
}

static uint16_t fold(uint64_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return (uint16_t)acc;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void store_sum(uint8_t *field, uint16_t complemented) { memcpy(field, &complemented, 2); }

int offload_finish_csum(uint8_t *pkt, size_t len, uint32_t csum_start, uint32_t csum_offset) {
  if ((size_t)csum_start + csum_offset + 2 > len) return -1;
  uint16_t sum = (uint16_t)~fold(sum_bytes(pkt + csum_start, len - csum_start, 0));
  /* UDP's checksum 0 means "none" (RFC 768): a computed 0 goes as its equal, 0xffff. */
  int udp = pkt[0] >> 4 == 4 ? pkt[9] == IPPROTO_UDP_ : pkt[0] >> 4 == 6 && pkt[6] == IPPROTO_UDP_;
  if (sum == 0 && udp && csum_offset == 6) sum = 0xffff;
  store_sum(pkt + csum_start + csum_offset, sum);
  return 0;
}

/* Where the TCP header starts, or 0 for anything but an unfragmented IPv4/IPv6 TCP packet that
 * fills exactly `len` bytes (IPv6 without extension headers: the kernel's TSO6 packets have none). */
static size_t tcp_start(const uint8_t *pkt, size_t len) {
  if (len < 40) return 0;
  if (pkt[0] >> 4 == 4) {
    size_t ihl = (size_t)(pkt[0] & 15) * 4;
    if (ihl < 20 || pkt[9] != IPPROTO_TCP_ || rd16(pkt + 2) != len || (rd16(pkt + 6) & 0x3fff) != 0) return 0;
    return ihl;
  }
  if (pkt[0] >> 4 == 6 && pkt[6] == IPPROTO_TCP_ && (size_t)rd16(pkt + 4) + 40 == len) return 40;
  return 0;
}

int offload_segment(const uint8_t *pkt, size_t len, uint32_t mss, uint8_t *out, size_t cap, uint32_t *offsets,
                    uint32_t *lengths, uint32_t max) {
  size_t th = tcp_start(pkt, len);
  if (th == 0 || th + 20 > len || mss == 0) return -1;
  size_t hdr = th + (size_t)(pkt[th + 12] >> 4) * 4;
  if (hdr < th + 20 || hdr > len) return -1;
  int v4 = pkt[0] >> 4 == 4;
  size_t payload = len - hdr;
  uint32_t count = payload == 0 ? 1 : (uint32_t)((payload + mss - 1) / mss);
  if (count > max) return -1;
  uint32_t seq0;
  memcpy(&seq0, pkt + th + 4, 4);
  seq0 = ntohl(seq0);
  uint16_t id0 = v4 ? rd16(pkt + 4) : 0;
  /* The pseudo-header's addresses are the same in every segment: summed once. */
  uint64_t addrs = v4 ? sum_bytes(pkt + 12, 8, 0) : sum_bytes(pkt + 8, 32, 0);
  size_t at = 0, from = hdr;
  for (uint32_t i = 0; i < count; i++) {
    size_t piece = payload - (from - hdr) < mss ? payload - (from - hdr) : mss;
    size_t seg_len = hdr + piece;
    if (at + seg_len > cap) return -1;
    uint8_t *s = out + at;
    memcpy(s, pkt, hdr);
    memcpy(s + hdr, pkt + from, piece);
    if (v4) {
      wr16(s + 2, (uint16_t)seg_len);
      wr16(s + 4, (uint16_t)(id0 + i));
      wr16(s + 10, 0);
      store_sum(s + 10, (uint16_t)~fold(sum_bytes(s, th, 0)));
    } else {
      wr16(s + 4, (uint16_t)(seg_len - 40));
    }
    uint8_t *tcp = s + th;
    uint32_t seq = htonl(seq0 + i * mss);
    memcpy(tcp + 4, &seq, 4);
    if (i + 1 < count) tcp[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (i > 0) tcp[13] &= (uint8_t)~TCP_CWR;
    wr16(tcp + 16, 0);
    uint64_t acc = addrs + htons(IPPROTO_TCP_) + htons((uint16_t)(seg_len - th));
    store_sum(tcp + 16, (uint16_t)~fold(sum_bytes(tcp, seg_len - th, acc)));
    offsets[i] = (uint32_t)at;
    lengths[i] = (uint32_t)seg_len;
    at += (seg_len + 7) & ~(size_t)7;
    from += piece;
  }
  return (int)count;
}
