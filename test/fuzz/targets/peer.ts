/**
 * The peer protocol (EasyTier 2.6's wire, daemon/peer/easytier/): the PM header and sealed packets
 * as a link opens them, the HandshakeRequest, the route-sync messages (SyncRouteInfo request and
 * response, with their peer infos and conn bitmaps), the TCP underlay's length framing; and the
 * carriers' flow frames. All of them document "never throws" or "throws TstierError
 * (TSTIER_E_BAD_PACKET)": a bad packet is dropped (counted), a bad message refused.
 */
import { randomBytes } from 'node:crypto';
import { DialStatus, FrameReader, FrameType, decodeOpen, encodeControl, encodeOpen } from '../../../daemon/carrier/flow-frames.js';
import { TstierError } from '../../../daemon/errors.js';
import { etCipher } from '../../../daemon/peer/easytier/cipher.js';
import { decodeHandshake, encodeHandshake, judgeHandshake, ourHandshake } from '../../../daemon/peer/easytier/handshake.js';
import { secretDigest } from '../../../daemon/peer/easytier/identity.js';
import { EtPacketType, buildPing, buildPm, forwardInPlace, openPm, splitPm } from '../../../daemon/peer/easytier/pm.js';
import { decodeSyncRouteInfoRequest, decodeSyncRouteInfoResponse, encodeSyncRouteInfoRequest,
  encodeSyncRouteInfoResponse, type RoutePeerInfo } from '../../../daemon/peer/easytier/route-msg.js';
import { FrameReader as TcpFrameReader, MAX_FRAME } from '../../../daemon/peer/underlay/tcp-frames.js';
import type { Rng } from '../../sim/world.js';
import type { FuzzTarget } from '../engine.js';
import { concat, datagrams, eachPiece, joinDatagrams, withControl } from './split.js';
import { socketAddrOf } from '../../../daemon/packet/flow-key.js';

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

/** Runs a decoder that may refuse its input only with TSTIER_E_BAD_PACKET; anything else is a finding. */
function refusedOrDecoded<T>(decode: () => T): T | null {
  try {
    return decode();
  } catch (e) {
    if (e instanceof TstierError && e.code === 'TSTIER_E_BAD_PACKET') return null;
    throw e;
  }
}

const NET = 'fuzz-net';
const SECRET = 'fuzz-secret';
/** Built once: key derivation per input would be the whole run. */
let cipher: ReturnType<typeof etCipher> | null = null;
const cipherOnce = (): ReturnType<typeof etCipher> => (cipher ??= etCipher('aes-gcm', SECRET));

export const etPmTarget: FuzzTarget = {
  name: 'et-pm',
  maxLength: 1600,
  corpus(rng: Rng) {
    const sealed = (type: number, n: number): Uint8Array =>
      buildPm({ from: 1, to: 2, type, flags: 0, forwardCounter: 1 }, rng.bytes(n), cipherOnce());
    return [
      joinDatagrams([sealed(EtPacketType.Data, 100), buildPing(1, 2, 7), sealed(EtPacketType.KcpSrc, 300)]),
      joinDatagrams([sealed(EtPacketType.RpcReq, 50), sealed(EtPacketType.HandShake, 40)]),
    ];
  },
  run(input) {
    for (const d of datagrams(input)) {
      const p = splitPm(d);
      if (p === null) {
        check(d.length < 16, 'a whole header refused');
        continue;
      }
      const opened = openPm(p, cipherOnce());
      check(!('payload' in opened) || opened.payload.length <= d.length, 'payload longer than the packet');
      const copy = Uint8Array.from(d);
      if (forwardInPlace(copy) === 'forward') check(copy[10] === d[10]! + 1, 'forwarded without a hop counted');
    }
  },
};

// ---------------------------------------------------------------- handshake

const ME = { peerId: 9, networkName: NET, digest: secretDigest(NET, SECRET) };

export const etHandshakeTarget: FuzzTarget = {
  name: 'et-handshake',
  maxLength: 300,
  corpus() {
    return [encodeHandshake(ourHandshake({ ...ME, peerId: 7 })), encodeHandshake(ourHandshake({ ...ME, peerId: 7 }, false))];
  },
  run(input) {
    const h = refusedOrDecoded(() => decodeHandshake(input));
    if (h === null) return;
    check(h.digest.length === 32, 'a digest of the wrong size accepted');
    const v = judgeHandshake(ME, h);
    // Only our own network's name and digest from another peer id may pass.
    if (v.ok) check(h.networkName === NET && Buffer.from(h.digest).equals(Buffer.from(ME.digest)) && h.myPeerId !== ME.peerId, 'a stranger judged ok');
  },
};

// ---------------------------------------------------------------- route sync

export const etRouteTarget: FuzzTarget = {
  name: 'et-route',
  maxLength: 1300,
  corpus(rng: Rng) {
    const info = (peerId: number, ipv6: boolean): RoutePeerInfo => ({
      peerId, instId: randomBytes(16), ipv4: rng.next(), networkLength: 24, proxyCidrs: ['192.168.1.0/24', '10.9.0.0/16'],
      hostname: `node-${peerId}-ü`, udpNatType: 0, version: rng.int(100), easytierVersion: '2.6.4-tstier',
      featureFlag: { kcpInput: true }, peerRouteId: 5n, tstierFeatures: 3,
      ...(ipv6 ? { ipv6: { address: rng.bytes(16), prefix: 64 } } : {}),
    });
    const req = encodeSyncRouteInfoRequest({ myPeerId: 1, mySessionId: 77n, isInitiator: true,
      peerInfos: [info(1, false), info(5, true)],
      connBitmap: { peerIds: [{ peerId: 1, version: 1 }, { peerId: 5, version: 2 }], bitmap: new Uint8Array([0b0110]) } });
    const resp = encodeSyncRouteInfoResponse({ isInitiator: false, sessionId: 78n });
    return [withControl(0, req), withControl(1, resp)];
  },
  run(input) {
    if (input.length === 0) return;
    const body = input.subarray(1);
    if ((input[0]! & 1) === 0) {
      const r = refusedOrDecoded(() => decodeSyncRouteInfoRequest(body));
      for (const p of r?.peerInfos ?? []) {
        check(p.instId.length === 16, 'an instance id of the wrong size');
        check(p.ipv6 === undefined || p.ipv6.address.length === 16, 'bad IPv6');
      }
      for (const [, c] of r?.conns ?? []) check(c.neighbours.length <= body.length * 8, 'more neighbours than bits');
    } else {
      refusedOrDecoded(() => decodeSyncRouteInfoResponse(body));
    }
  },
};

// ---------------------------------------------------------------- flow frames

export const flowFramesTarget: FuzzTarget = {
  name: 'flow-frames',
  maxLength: 2000,
  corpus(rng: Rng) {
    const data = (n: number): Uint8Array => {
      const f = new Uint8Array(3 + n);
      f[0] = FrameType.Data;
      f[1] = n >> 8;
      f[2] = n & 0xff;
      f.set(rng.bytes(n), 3);
      return f;
    };
    const stream = concat([
      encodeOpen({ src: socketAddrOf('10.0.0.1', 1000)!, dst: socketAddrOf('fd00::2', 80)!, optimistic: true }),
      encodeControl(FrameType.Status, DialStatus.Connected), data(500), data(0), data(40),
      encodeControl(FrameType.Fin), encodeControl(FrameType.Rst),
    ]);
    return [withControl(0x80, stream), withControl(4, stream), withControl(24, stream)];
  },
  run(input) {
    const reader = new FrameReader();
    let dataBytes = 0;
    eachPiece(input, (piece) => {
      reader.push(piece);
      for (let f = reader.next(); f !== null; f = reader.next()) {
        if (f === 'error') return false;
        if (f.type === FrameType.Data) dataBytes += f.payload.length;
        else if (f.type === FrameType.Open) decodeOpen(f.payload);
      }
      return true;
    });
    check(dataBytes <= input.length, 'more DATA bytes than were pushed');
  },
};

// ---------------------------------------------------------------- TCP underlay framing

export const tcpFramesTarget: FuzzTarget = {
  name: 'tcp-frames',
  maxLength: 3000,
  corpus(rng: Rng) {
    const frame = (n: number): Uint8Array => {
      const f = new Uint8Array(4 + n);
      f[0] = n & 0xff;
      f[1] = n >> 8;
      f.set(rng.bytes(n), 4);
      return f;
    };
    const stream = concat([frame(100), frame(0), frame(1200), frame(7)]);
    return [withControl(0x80, stream), withControl(3, stream), withControl(60, stream)];
  },
  run(input) {
    // A small first-frame limit (as a listener holds for a link's first packet) for odd lengths, MAX_FRAME otherwise.
    const limit = (input.length & 1) === 1 ? 112 : MAX_FRAME;
    const reader = new TcpFrameReader(limit);
    let bytes = 0;
    eachPiece(input, (piece) => reader.feed(Buffer.from(piece.buffer, piece.byteOffset, piece.length), (pkt) => {
      check(pkt.length <= limit, `a frame of ${pkt.length} bytes`);
      bytes += 4 + pkt.length;
    }) && reader.buffered <= 4 + limit);
    check(bytes <= input.length && reader.buffered <= 4 + limit, 'frames or the buffer hold more bytes than were fed or allowed');
  },
};
