/**
 * A cipher as kcp-go applies it: to a whole datagram, in place, from byte 0
 * (the 16-byte nonce included).
 */
export interface BlockCrypt {
  /** Encrypts buf[0, len) in place. */
  encrypt(buf: Uint8Array, len: number): void;
  /**
   * Decrypts buf[0, len) in place. Bytes [0, 16) (the nonce, which nobody reads)
   * may come out different from what the sender wrote; every byte after them is exact.
   */
  decrypt(buf: Uint8Array, len: number): void;
}

/**
 * kcp-go's CFB starts every datagram from this fixed register; 8-byte-block
 * ciphers take its first 8 bytes.
 */
export const KCP_IV: Uint8Array = Uint8Array.of(
  0xa7, 0x73, 0x4f, 0x9c, 0x12, 0xac, 0x1b, 0x01, 0xa4, 0x15, 0xf2, 0xc1, 0xfc, 0x78, 0xe6, 0x6b,
);

/** Length of the random block every non-AEAD datagram starts with. */
export const NONCE_SIZE = 16;
