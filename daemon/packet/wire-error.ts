/**
 * Why a buffer is not a well-formed packet. Views return one of these from `check`/`wrap` instead
 * of throwing: bad packets come from the network and are counted and dropped, never fatal.
 */
export type PacketError =
  | 'truncated' // the buffer ends before a length field says it should
  | 'bad-version' // IP version nibble is not the expected one
  | 'bad-header-length' // IPv4 IHL or TCP data offset below its minimum
  | 'bad-length' // a total/payload length field is smaller than the header it covers
  | 'bad-extension-header' // an IPv6 extension header chain runs past the packet
  | 'bad-option'; // a TCP option's length is malformed
