/**
 * The block-cipher datagram framing (nonce, CRC-32, fixed-IV CFB; see datagram.ts) done by the transport
 * addon in one call per datagram, for the ciphers OpenSSL has. Byte for byte what CrcFramedCrypt with
 * NodeCfbCrypt produces and accepts, but without node:crypto's per-call output buffer, the copy back,
 * and the CRC in JavaScript, which together were most of a kcptun session's CPU.
 */
import type { CfbAlgorithm, CfbHandle, TransportAddon } from '../native.js';
import type { BlockCryptName } from './factory.js';

/** Nonce + CRC: the same header the JavaScript framing writes. */
const HEADER_SIZE = 20;

/** A DatagramCrypt (datagram.ts builds it; the interface is not imported here, which would be a cycle). */
export class NativeFramedCrypt {
  readonly headerSize = HEADER_SIZE;
  readonly tailroom = 0;
  private readonly handle: CfbHandle;

  /** Throws when the addon cannot build the cipher (the caller falls back to JavaScript). */
  constructor(
    readonly name: BlockCryptName,
    readonly fellBack: boolean,
    private readonly addon: TransportAddon,
    algorithm: CfbAlgorithm,
    key: Uint8Array,
  ) {
    this.handle = addon.cfbCreate(algorithm, key);
  }

  seal(buf: Uint8Array, len: number): number {
    this.addon.cfbSeal(this.handle, buf, len);
    return len;
  }

  sealMany(datagrams: Uint8Array[], count: number): void {
    this.addon.cfbSealMany(this.handle, datagrams, count);
  }

  /** OPEN_TOO_SHORT (-1) and OPEN_BAD_CRC (-2) are the addon's own results. */
  open(buf: Uint8Array, len: number): number {
    return this.addon.cfbOpen(this.handle, buf, len);
  }
}
