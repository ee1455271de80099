/**
 * Text and stream formats an operator or a kcptube peer hands us: easytier-core's TOML file (its
 * documented failure is a TstierError TSTIER_E_BAD_CONFIG naming the key or the line), kcptube's
 * key=value file (never throws: issues are returned), and kcptube's record stream and HELLO
 * messages (never throw: null, or `failed`).
 */
import { parseConfigToml } from '../../../daemon/config/toml-file.js';
import { TstierError } from '../../../daemon/errors.js';
import { parseKcptubeConfig } from '../../../daemon/kcptube/config.js';
import {
  R_DATA, R_FIN, R_HELLO, R_HELLO_REPLY, R_OPEN, RecordReader, WIRE_VERSION, decodeHello, decodeHelloReply, encodeHello,
  encodeHelloReply, writeRecordHeader,
} from '../../../daemon/kcptube/wire.js';
import type { Rng } from '../../sim/world.js';
import type { FuzzTarget } from '../engine.js';
import { concat, eachPiece, withControl } from './split.js';

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

const utf8 = new TextDecoder();
const encode = (s: string): Uint8Array => new TextEncoder().encode(s);

const TOML = `instance_name = "from-file"
hostname = "filehost"
ipv4 = "10.144.144.7/24"
ipv6 = "fd00::7"
listeners = ["udp://0.0.0.0:12010", "tcp:12011"]
rpc_portal = "0.0.0.0:15888"

[network_identity]
network_name = "filenet"
network_secret = "filesecret"

[[peer]]
uri = "udp://10.1.0.2:11010"

[[proxy_network]]
cidr = "192.168.60.0/24"
mapped_cidr = "10.60.0.0/24"
allow = ["tcp"]

[flags]
no_tun = true
enable_kcp_proxy = true
dev_name = "tst0"
mtu = 1300
quic_congestion = "bbr"
some_future_flag = 7

[console_logger]
level = "warn"
`;

export const tomlTarget: FuzzTarget = {
  name: 'toml',
  maxLength: 600,
  corpus() {
    return [encode(TOML), encode('[flags]\nmtu = 1400.5\n'), encode('[[peer]]\nuri = "udp://10.0.0.1"\n'), encode('a = [1, [2, {b = 3}]]\n')];
  },
  run(input) {
    try {
      parseConfigToml(utf8.decode(input), 'fuzz.toml');
    } catch (e) {
      if (!(e instanceof TstierError) || e.code !== 'TSTIER_E_BAD_CONFIG') throw e;
    }
  },
};

const KCPTUBE_CLIENT = `mode=client
kcp=regular3
listen_on=127.0.0.1, ::1
listen_port=5099
destination_port=30000-30010
destination_address=127.0.0.1,[fd00::1],host.example
encryption_password=qwerty1234
encryption_algorithm=AES-GCM
fec=20:4
mtu=1400
outbound_bandwidth=100M
blast=0
`;
const KCPTUBE_RELAY = `mode=relay
[listener]
listen_port=3000-3010
encryption_algorithm=xchacha20
encryption_password=p
[forwarder]
destination_address=10.0.0.2
destination_port=4000
kcp=manual
kcp_sndwnd=300
kcp_nc=no
`;

export const kcptubeConfigTarget: FuzzTarget = {
  name: 'kcptube-config',
  maxLength: 600,
  corpus() {
    return [encode(KCPTUBE_CLIENT), encode(KCPTUBE_RELAY), encode('mode=server\nlisten_port=1-65535\nstun_server=s\n')];
  },
  run(input) {
    const { config, issues } = parseKcptubeConfig('fuzz.conf', utf8.decode(input));
    check((config === null) === (issues.length > 0), 'a config with issues, or no config and no issue');
  },
};

function record(kind: number, conn: number, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(7 + payload.length);
  writeRecordHeader(b, 0, kind, conn, payload.length);
  b.set(payload, 7);
  return b;
}

export const kcptubeWireTarget: FuzzTarget = {
  name: 'kcptube-wire',
  maxLength: 3000,
  corpus(rng: Rng) {
    const stream = concat([
      record(R_HELLO, 0, encodeHello({ version: WIRE_VERSION, outboundBps: 1e8, inboundBps: 0 })),
      record(R_HELLO_REPLY, 0, encodeHelloReply({ portStart: 3000, portEnd: 3010, outboundBps: 0, inboundBps: 5e7 })),
      record(R_OPEN, 1, Uint8Array.of(1)), record(R_DATA, 1, rng.bytes(700)), record(R_FIN, 1, new Uint8Array(0)),
    ]);
    return [withControl(0x80, stream), withControl(9, stream)];
  },
  run(input) {
    const reader = new RecordReader();
    eachPiece(input, (piece) => {
      for (let at = 0; at < piece.length; ) {
        const space = reader.space();
        const n = Math.min(space.length, piece.length - at);
        space.set(piece.subarray(at, at + n));
        reader.commit(n);
        at += n;
        for (let r = reader.next(); r !== null; r = reader.next()) {
          check(r.payload.length <= 0xffff, 'a record longer than its length field allows');
          if (r.kind === R_HELLO) decodeHello(r.payload);
          else if (r.kind === R_HELLO_REPLY) {
            const h = decodeHelloReply(r.payload);
            check(h === null || (h.portStart > 0 && h.portStart <= h.portEnd), 'a port range that should have been refused');
          }
        }
        if (reader.failed) return false;
      }
      return true;
    });
  },
};
