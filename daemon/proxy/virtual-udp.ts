/**
 * UDP sockets on this node's virtual address, for datagrams that start in the daemon (SOCKS5 UDP
 * ASSOCIATE, udp port forwards). With a TUN it is a kernel socket bound to the virtual address: the
 * kernel routes it over the TUN like any application's. With --no-tun no interface has that address,
 * so the node builds the IPv4/UDP packets itself, sends them as plain Data to the owner of the
 * destination, and takes the replies addressed to its ports before anything else sees them.
 * Datagrams are not fragmented: one larger than the TUN MTU allows is dropped and counted.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { emitUdpPacket } from '../packet/build.js';
import { Ipv4View, IPV4_HEADER_LEN } from '../packet/ipv4.js';
import { parseIpv4Address } from '../packet/address.js';
import { IPPROTO_UDP, UDP_HEADER_LEN, UdpView } from '../packet/udp.js';
import { u32ToIpv4 } from '../peer/ipv4-prefix.js';
import type { ProxyHost } from './proxy-host.js';

export interface UdpPeer {
  ip: string;
  port: number;
}

export type UdpReceive = (from: UdpPeer, payload: Buffer) => void;

export interface VirtualUdpSocket {
  readonly port: number;
  /** False when the datagram was dropped (too large, no route). */
  send(to: UdpPeer, payload: Uint8Array): boolean;
  close(): void;
}

/** Ports the --no-tun path hands out: the IANA dynamic range, where no well-known service listens. */
const FIRST_PORT = 49152;
const PORT_COUNT = 65536 - FIRST_PORT;

export class VirtualUdp {
  /** Datagrams dropped for exceeding the MTU. */
  tooLarge = 0;
  private readonly ports = new Map<number, UdpReceive>();
  private nextPort = 0;
  private intercepting = false;
  private readonly ip: Uint8Array;
  private readonly ipU32: number;
  private readonly view = new Ipv4View();
  private readonly udp = new UdpView();
  /** Where --no-tun packets are built: the peer layer copies a packet while sending it. */
  private readonly scratch: Buffer;

  constructor(private readonly host: ProxyHost) {
    this.ip = host.addresses.ipv4?.bytes ?? new Uint8Array(4);
    this.ipU32 = host.addresses.ipv4?.u32 ?? 0;
    this.scratch = Buffer.allocUnsafe(host.config.mtu);
  }

  /** Throws (a message naming the cause) when the node has no virtual IPv4 address. */
  async open(onMessage: UdpReceive): Promise<VirtualUdpSocket> {
    const cfg = this.host.config;
    if (!cfg.ipv4) throw new Error('this node has no virtual IPv4 address (-i)');
    return cfg.noTun ? this.openInjected(onMessage) : openKernel(cfg.ipv4.address, this.maxPayload(), () => this.tooLarge++, onMessage);
  }

  private maxPayload(): number {
    return this.host.config.mtu - IPV4_HEADER_LEN - UDP_HEADER_LEN;
  }

  private openInjected(onMessage: UdpReceive): VirtualUdpSocket {
    const port = this.allocatePort();
    this.ports.set(port, onMessage);
    if (!this.intercepting) {
      this.intercepting = true;
      this.host.addInboundInterceptor((pkt) => this.fromPeer(pkt));
    }
    let open = true;
    return {
      port,
      send: (to, payload) => {
        const dst = parseIpv4Address(to.ip);
        if (!open || !dst) return false;
        if (payload.length > this.maxPayload()) {
          this.tooLarge++;
          return false;
        }
        const n = emitUdpPacket({ src: this.ip, dst, dontFragment: false }, { srcPort: port, dstPort: to.port, payload }, this.scratch);
        this.host.forward(this.scratch.subarray(0, n));
        return true;
      },
      close: () => {
        open = false;
        this.ports.delete(port);
      },
    };
  }

  private allocatePort(): number {
    if (this.ports.size >= PORT_COUNT) throw new Error('no free UDP port on the virtual address');
    for (;;) {
      const port = FIRST_PORT + (this.nextPort++ % PORT_COUNT);
      if (!this.ports.has(port)) return port;
    }
  }

  /** A Data packet from a peer: ours if it is UDP to our address and one of our ports. */
  private fromPeer(pkt: Buffer): boolean {
    const ip = this.view;
    if (ip.wrap(pkt) || ip.protocol !== IPPROTO_UDP || ip.dst !== this.ipU32 || !ip.hasTransportHeader) return false;
    if (this.udp.wrap(pkt, ip.transportStart, ip.end)) return false;
    const handler = this.ports.get(this.udp.dstPort);
    if (!handler) return false;
    // The packet is only valid during this call: the handler gets its own copy.
    handler({ ip: u32ToIpv4(ip.src), port: this.udp.srcPort }, Buffer.from(pkt.subarray(this.udp.payloadStart, this.udp.end)));
    return true;
  }
}

/** With a TUN: a kernel socket on the virtual address, so the kernel routes it over the TUN. */
function openKernel(address: string, maxPayload: number, dropped: () => void, onMessage: UdpReceive): Promise<VirtualUdpSocket> {
  const sock: UdpSocket = createSocket('udp4');
  sock.on('message', (msg, rinfo) => onMessage({ ip: rinfo.address, port: rinfo.port }, msg));
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, address, () => {
      sock.off('error', reject);
      sock.on('error', () => undefined); // e.g. ICMP port unreachable for one send: the next may work
      let open = true;
      resolve({
        port: sock.address().port,
        send: (to, payload) => {
          if (!open) return false;
          if (payload.length > maxPayload) {
            dropped();
            return false;
          }
          sock.send(payload, to.port, to.ip);
          return true;
        },
        close: () => {
          if (!open) return;
          open = false;
          sock.close();
        },
      });
    });
  });
}
