/**
 * The transport addon (native/): kcp-go's per-datagram work for tstier-kcptun and kcptube — the CFB
 * ciphers with their nonce and CRC framing, CRC-32/CRC-32C, and the Reed-Solomon multiply-add — on
 * buffers JavaScript owns, nothing allocated per datagram. Built by bin/setup; when it is missing the
 * TypeScript implementations (the reference, byte for byte the same) do the work.
 * TSTIER_TRANSPORT_ADDON=off makes them do it with the addon built (to compare, or to rule it out);
 * TSTIER_TRANSPORT_ADDON=<path> loads another build.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadNativeAddon } from '../errors.js';

export type CfbHandle = object;
/** The OpenSSL CFB ciphers kcptun names map to. */
export type CfbAlgorithm = 'aes-128-cfb' | 'aes-192-cfb' | 'aes-256-cfb' | 'des-ede3-cfb' | 'sm4-cfb';

export interface TransportAddon {
  /** CRC-32/IEEE, or CRC-32C when castagnoli, over buf[start, end). */
  crc32(buf: Uint8Array, start: number, end: number, castagnoli: boolean): number;
  /** Throws when OpenSSL lacks the cipher or the key length is wrong. */
  cfbCreate(algorithm: CfbAlgorithm, key: Uint8Array): CfbHandle;
  /** Nonce, CRC-32 and fixed-IV CFB over buf[0, len) in place (len ≥ 20). */
  cfbSeal(h: CfbHandle, buf: Uint8Array, len: number): void;
  /** cfbSeal of each bufs[i] (its whole view) for i < count; aes-128/256 chains run eight at a time. */
  cfbSealMany(h: CfbHandle, bufs: Uint8Array[], count: number): void;
  /** Deciphers buf[0, len) in place: 20 (payload offset), -1 too short, -2 bad CRC. */
  cfbOpen(h: CfbHandle, buf: Uint8Array, len: number): number;
  /** dst[dOff + j] ^= c·src[sOff + j] in GF(2^8) for j < n. */
  gfMulAdd(c: number, src: Uint8Array, sOff: number, dst: Uint8Array, dOff: number, n: number): void;
  /** gfMulAdd of coeffs[k] into dst[dOff + k·stride, +n) for each k. */
  gfMulAddRows(coeffs: Uint8Array, src: Uint8Array, sOff: number, n: number, dst: Uint8Array, dOff: number, stride: number): void;
}

export const TRANSPORT_ADDON_FILE = 'daemon/transport/native/build/Release/tstier_transport.node';
let addon: TransportAddon | null | undefined;

/**
 * The addon if built (looked for from dist/daemon/transport/ and daemon/transport/) and not turned off,
 * else null; loaded once. A file that exists but does not load is a TstierError (TSTIER_E_ADDON) naming it.
 */
export function transportAddon(): TransportAddon | null {
  if (addon !== undefined) return addon;
  const setting = process.env.TSTIER_TRANSPORT_ADDON;
  if (setting === 'off') return (addon = null);
  const override = setting !== undefined && setting !== '' && setting !== 'on' ? setting : undefined;
  const found = override ?? ['../../../', '../../'].map((up) => fileURLToPath(new URL(up + TRANSPORT_ADDON_FILE, import.meta.url)))
    .find((p) => existsSync(p));
  addon = found ? loadNativeAddon(found, 'transport addon', override && 'TSTIER_TRANSPORT_ADDON') as TransportAddon : null;
  return addon;
}
