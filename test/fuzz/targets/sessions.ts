/**
 * Whole receive paths, where one layer's output is the next one's input: a kcptun server session
 * (crypt framing → FEC → KCP → snappy → smux) fed datagrams a real client produced, mutated; and
 * kcptube's tunnel cipher. Both document "never throws": a bad datagram is counted and dropped, a
 * broken stream closes the session with an event.
 */
import { CRYPT_OVERHEAD, TunnelCipher, type KcptubeCipher } from '../../../daemon/kcptube/crypt.js';
import { newDatagramCrypt } from '../../../daemon/transport/crypt/datagram.js';
import { KcptunSession, type KcptunSessionConfig } from '../../../daemon/transport/session/kcptun-session.js';
import { newSnmp } from '../../../daemon/transport/session/snmp.js';
import type { Rng } from '../../sim/world.js';
import type { FuzzTarget } from '../engine.js';
import { datagrams, joinDatagrams, withControl } from './split.js';

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

/** The null cipher, so mutations reach FEC, KCP, snappy and smux instead of stopping at a CRC. */
function sessionConfig(role: 'client' | 'server', compress: boolean): KcptunSessionConfig {
  return {
    conv: 0x1234, crypt: newDatagramCrypt('null', new Uint8Array(32)), dataShards: 3, parityShards: 2, mtu: 1350,
    sndWnd: 64, rcvWnd: 64, nodelay: 1, interval: 10, resend: 2, nc: 1, ackNoDelay: false, compress, role,
    smux: { version: (compress ? 2 : 1), maxStreamBuffer: 65536, maxReceiveBuffer: 262144, keepAliveInterval: 10_000, keepAliveTimeout: 30_000 },
  };
}

export const kcptunSessionTarget: FuzzTarget = {
  name: 'kcptun-session',
  maxLength: 3000,
  corpus(rng: Rng) {
    return [false, true].map((compress) => {
      const client = new KcptunSession(sessionConfig('client', compress), newSnmp(), 0);
      for (let i = 0; i < 2; i++) {
        const sid = client.openStream() as number;
        client.streamWrite(sid, rng.bytes(rng.range(10, 1500)));
      }
      client.pump(0);
      client.handleTimeout(20);
      const out: Uint8Array[] = [];
      for (let d = client.pollTransmit(); d !== null; d = client.pollTransmit()) out.push(d.slice());
      return withControl(compress ? 1 : 0, joinDatagrams(out));
    });
  },
  run(input) {
    if (input.length === 0) return;
    const server = new KcptunSession(sessionConfig('server', (input[0]! & 1) === 1), newSnmp(), 0);
    let now = 0;
    for (const d of datagrams(input.subarray(1))) {
      server.input(d.slice(), now); // opened in place: each datagram its own copy, as a socket read is
      server.pump(now);
      for (let e = server.pollEvent(); e !== null; e = server.pollEvent()) {
        if (e.type === 'readable') while (server.streamRead(e.sid) !== null);
      }
      now += 10;
      server.handleTimeout(now);
      while (server.pollTransmit() !== null);
    }
  },
};

const TUBE_CIPHERS: readonly KcptubeCipher[] = ['none', 'aes-gcm', 'aes-ocb', 'chacha20', 'xchacha20'];
let tubeCiphers: TunnelCipher[] | null = null;
const tubeCiphersOnce = (): TunnelCipher[] => (tubeCiphers ??= TUBE_CIPHERS.map((n) => TunnelCipher.fromPassword(n, 'fuzz')));
let tubeBuf = new Uint8Array(0);
const TAIL = 32;

export const kcptubeCipherTarget: FuzzTarget = {
  name: 'kcptube-cipher',
  maxLength: 1500,
  corpus(rng: Rng) {
    return tubeCiphersOnce().map((c, i) => {
      const len = CRYPT_OVERHEAD[c.name] + 9 + rng.range(0, 200);
      const buf = new Uint8Array(len);
      buf.set(rng.bytes(len - c.headerSize), c.headerSize);
      return withControl(i, buf.subarray(0, c.seal(buf, len)));
    });
  },
  run(input) {
    if (input.length === 0) return;
    const all = tubeCiphersOnce();
    const c = all[input[0]! % all.length]!;
    const len = input.length - 1;
    if (tubeBuf.length < len + TAIL) tubeBuf = new Uint8Array(len + TAIL + 2048);
    tubeBuf.set(input.subarray(1));
    tubeBuf.fill(0x5a, len, len + TAIL);
    const r = c.open(tubeBuf, len);
    check(r === -1 || r === -2 || (r >= 0 && r <= len), `open() returned ${r} for ${len} bytes`);
    for (let i = len; i < len + TAIL; i++) check(tubeBuf[i] === 0x5a, `${c.name}: open() wrote past the datagram`);
  },
};
