/**
 * Packets the Linux kernel wrote to a TUN device (captured with TunDevice in a namespace), so
 * their checksums were computed by an implementation other than ours.
 */
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

/** TCP SYN 10.88.0.1:35468 -> 10.88.0.2:8080 with MSS, SACK-permitted, timestamps, window scale 10. */
export const tcp4Syn = hex(
  '4500003ce770400040063e990a5800010a5800028a8c1f900fab78b200000000a002faf0ffbb0000020405b40402080a31b8d46b000000000103030a',
);
/** TCP SYN [fd88::1]:44572 -> [fd88::2]:8080, flow label set. */
export const tcp6Syn = hex(
  '6003099700280640fd880000000000000000000000000001fd880000000000000000000000000002ae1c1f90012ad4da00000000a002fd201ff70000020405a00402080a226869cb000000000103030a',
);
/** UDP 10.88.0.1:60697 -> 10.88.0.2:5353, payload "hello tstier". */
export const udp4 = hex('450000284d9340004011d87f0a5800010a580002ed1914e9001456cf68656c6c6f20747374696572');
/** UDP [fd88::1]:49091 -> [fd88::2]:5353, payload "hello v6". */
export const udp6 = hex(
  '600df8a700101140fd880000000000000000000000000001fd880000000000000000000000000002bfc314e9001075e468656c6c6f207636',
);
/** ICMPv6 echo request fd88::1 -> fd88::2, ident 0x378d, seq 1, 12 bytes 00..0b. */
export const icmp6Echo = hex(
  '600efa4900143a40fd880000000000000000000000000001fd88000000000000000000000000000280002eea378d0001000102030405060708090a0b',
);
/** ICMPv6 router solicitation from a link-local address to ff02::2. */
export const icmp6RouterSolicit = hex(
  '6000000000083afffe80000000000000c88948f74ce9fe25ff020000000000000000000000000002850020a700000000',
);
/** The IPv4 header example with checksum 0xb861 (a well-known worked example). */
export const ipv4HeaderExample = hex('450000730000400040110000c0a80001c0a800c7');
export const ipv4HeaderExampleChecksum = 0xb861;
