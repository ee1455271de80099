/**
 * The peer layer's optional addon (native/): AEADs with one context per key (EasyTier's payload
 * layout), UDP GSO, GRO and sendmmsg, batched UDP receives (recvmmsg), and which peers refused a
 * listening UDP socket.
 * Built by bin/setup; when it is missing the callers fall back to node:crypto and dgram.
 * TSTIER_PEER_ADDON=off in the environment makes them fall back with it built (to compare, or to
 * rule it out); TSTIER_PEER_ADDON=<path> loads another build.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadNativeAddon } from '../errors.js';

export type AeadHandle = object;

export interface PeerAddon {
  /** EasyTier's payload AEAD (et_aead.c): cipher 0 AES-128-GCM, 1 AES-256-GCM, 2 ChaCha20-Poly1305. */
  etAeadCreate(cipher: number, key: Uint8Array, encrypt: boolean): AeadHandle;
  /** payload → out[at..]: ciphertext, tag, nonce (random unless nonceGiven: already in place). */
  etAeadSeal(h: AeadHandle, out: Uint8Array, at: number, payload: Uint8Array, nonceGiven: boolean): void;
  /** Opens buf[at..at + len] in place: the plaintext length, or -1. */
  etAeadOpen(h: AeadHandle, buf: Uint8Array, at: number, len: number): number;
  /** One GSO send of datagrams[first, first + count): all `segment` bytes, the last maybe shorter. Bytes sent or -errno. */
  udpSendRun(fd: number, datagrams: Uint8Array[], first: number, count: number, segment: number,
    ip: string | null, port: number): number;
  /** One sendmmsg of datagrams[first, first + count) (any sizes, count ≤ 64): how many went, or -errno when none did. */
  udpSendMany(fd: number, datagrams: Uint8Array[], first: number, count: number, ip: string | null, port: number): number;
  /** Probes a UDP socket: bit 1, GSO sends work; bit 2, GRO is now on (turned on only when `gro`). */
  udpOffloads(fd: number, gro: boolean): number;
  /** Datagrams the kernel dropped for this socket (its receive buffer full) since it was made, or -errno. */
  udpDrops(fd: number): number;
  /** Queues ICMP errors on a UDP socket's error queue (IP_RECVERR): 0 or -errno. */
  udpRecvErrors(fd: number, ipv6: boolean): number;
  /** Drains the error queue: [address, port, ...] of the peers whose port answered "unreachable". */
  udpTakeRefused(fd: number): (string | number)[];
  /** Slots per batch read, at most (udpOpen). */
  BATCH_MAX: number;
  /**
   * A UDP socket of the addon's own, bound to host:port (an IP literal; ipv6: a dual-stack AF_INET6
   * socket), read in batches of up to `slots` (≤ BATCH_MAX) `slot`-byte slots (udp_recv.c); with `gro`, UDP GRO
   * on: a slot may hold a run of datagrams, listed one by one. Throws an Error whose code is the errno name.
   */
  udpOpen(ipv6: boolean, host: string, port: number, rcvbuf: number, sndbuf: number, slot: number, slots: number,
    gro: boolean): UdpHandle;
  udpConnect(h: UdpHandle, ip: string, port: number): number;
  /** The bound [address, port]. */
  udpLocal(h: UdpHandle): [string, number];
  /** The socket's fd (for udp.c's sends and probes), or -1 once closed. */
  udpFd(h: UdpHandle): number;
  /**
   * Reads in batches: onBatch(count) with offsets/lengths of the datagrams in `batch`, whose tail holds
   * their source addresses and the socket's drop count (see udp_recv.c); onError for a socket error
   * (an ICMP report; reading goes on).
   */
  udpStart(h: UdpHandle, batch: ArrayBuffer, offsets: Uint32Array, lengths: Uint32Array,
    onBatch: (count: number) => void, onError: (code: string, message: string) => void): void;
  /** rxPackets rxBytes txPackets txBytes rxTruncated txErrors. */
  udpStats(h: UdpHandle, out: Float64Array): void;
  udpClose(h: UdpHandle): void;
}

export type UdpHandle = object;

export const PEER_ADDON_FILE = 'daemon/peer/native/build/Release/tstier_peer.node';
let addon: PeerAddon | null | undefined;

/**
 * The addon if built (looked for from dist/daemon/peer/ and daemon/peer/) and not turned off, else
 * null; loaded once. TSTIER_PEER_ADDON=<path> loads that file instead. A file that exists but does
 * not load is a TstierError (TSTIER_E_ADDON) naming it: the node calls this at start-up, so that
 * surfaces there as one line, never later inside a packet path.
 */
export function peerAddon(): PeerAddon | null {
  if (addon !== undefined) return addon;
  const setting = process.env.TSTIER_PEER_ADDON;
  if (setting === 'off') return (addon = null);
  const override = setting !== undefined && setting !== '' && setting !== 'on' ? setting : undefined;
  const found = override ?? ['../../../', '../../'].map((up) => fileURLToPath(new URL(up + PEER_ADDON_FILE, import.meta.url)))
    .find((p) => existsSync(p));
  addon = found ? loadNativeAddon(found, 'peer addon', override && 'TSTIER_PEER_ADDON') as PeerAddon : null;
  return addon;
}

/** Which implementation the payload ciphers use; tests pin one to compare them. */
export type AeadImpl = 'native' | 'node';

export function defaultAeadImpl(): AeadImpl {
  return peerAddon() ? 'native' : 'node';
}
