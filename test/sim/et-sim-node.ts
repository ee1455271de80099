/**
 * An EasyTier member node (daemon/peer/easytier/node-core.ts) as a simulated endpoint, with the
 * underlay modelled as EasyTier's udp:// is: a dialler sends a Syn and starts its PeerConn on the
 * Sack; a Syn resets the listener's link; a dialler whose link dies (no Sack in 3 s, handshake
 * timeout, lost pings) dials again after a second. Node n is peer id peerIdOf(n).
 */
import { randomBytes } from 'node:crypto';
import type { SimDatagram, SimEndpoint } from './world.js';
import { EtNodeCore } from '../../daemon/peer/easytier/node-core.js';
import { etCipher } from '../../daemon/peer/easytier/cipher.js';
import { secretDigest } from '../../daemon/peer/easytier/identity.js';
import { UDP_CONNECT_TIMEOUT_MS } from '../../daemon/peer/easytier/underlay.js';

const NET = 'sim-et';
const SECRET = 'sim-secret';
const REDIAL_MS = 1000;
/** First byte of every simulated datagram: the udp:// message type it stands for. */
const SYN = 1;
const SACK = 2;
const DATA = 3;

export const peerIdOf = (node: number): number => 1000 + node;

export class EtSimNode implements SimEndpoint {
  readonly core: EtNodeCore;
  readonly received: Uint8Array[] = [];
  readonly #out: SimDatagram[] = [];
  /** Neighbours we dial → when to send the next Syn (absent while a Syn awaits its Sack or the link lives). */
  readonly #dialAt = new Map<number, number>();
  readonly #awaitingSack = new Map<number, number>();
  readonly #dials: Set<number>;
  /** Syns sent: more than one per dialled neighbour means links died and came back. */
  syns = 0;

  constructor(id: number, dials: number[], start: number) {
    this.#dials = new Set(dials);
    this.core = new EtNodeCore({
      me: { peerId: peerIdOf(id), networkName: NET, digest: secretDigest(NET, SECRET) },
      cipher: etCipher('aes-gcm', SECRET),
      now: start,
      info: { peerId: peerIdOf(id), instId: randomBytes(16), networkLength: 24, proxyCidrs: [], hostname: `n${id}`, udpNatType: 0,
        version: 1, easytierVersion: 'sim', featureFlag: {}, peerRouteId: BigInt(id) },
    });
    for (const n of dials) this.#dialAt.set(n, start);
  }

  input(d: Uint8Array, now: number, from: number): void {
    const key = String(from);
    if (d[0] === SYN) {
      this.core.connClosed(key, now);
      this.core.addConn(key, 'listener', now);
      this.#out.push({ to: from, data: Uint8Array.of(SACK) });
    } else if (d[0] === SACK && this.#awaitingSack.has(from)) {
      this.#awaitingSack.delete(from);
      this.core.addConn(key, 'dialler', now);
    } else if (d[0] === DATA) {
      this.core.input(key, d.subarray(1), now);
    } // anything else: a corrupted udp header, dropped as EasyTier drops it
    this.#drain(now);
  }

  handleTimeout(now: number): void {
    for (const [n, at] of [...this.#awaitingSack]) {
      if (at > now) continue;
      this.#awaitingSack.delete(n);
      this.#dialAt.set(n, now);
    }
    for (const [n, at] of [...this.#dialAt]) {
      if (at > now) continue;
      this.#dialAt.delete(n);
      this.#awaitingSack.set(n, now + UDP_CONNECT_TIMEOUT_MS);
      this.#out.push({ to: n, data: Uint8Array.of(SYN) });
      this.syns++;
    }
    if (this.core.pollTimeout() <= now) this.core.handleTimeout(now);
    this.#drain(now);
  }

  pollTimeout(): number {
    return Math.min(this.core.pollTimeout(), ...this.#dialAt.values(), ...this.#awaitingSack.values());
  }

  pollTransmit(): SimDatagram | null {
    for (let o = this.core.pollTransmit(); o; o = this.core.pollTransmit()) {
      const data = new Uint8Array(1 + o.pm.length);
      data[0] = DATA;
      data.set(o.pm, 1);
      this.#out.push({ to: Number(o.key), data });
    }
    return this.#out.shift() ?? null;
  }

  #drain(now: number): void {
    for (let ev = this.core.pollEvent(); ev; ev = this.core.pollEvent()) {
      if (ev.type === 'data') this.received.push(ev.payload);
      else if (ev.type === 'peer-down' && ev.reason !== 'local' && this.#dials.has(Number(ev.key))) this.#dialAt.set(Number(ev.key), now + REDIAL_MS);
    }
  }
}
