/**
 * The node's front doors for applications that do not go through the TUN: the SOCKS5 server
 * (`--socks5`). They open flows through the TCP proxy's carriers and datagrams from the node's
 * virtual address, so they work with --no-tun.
 */
import type { Logger } from '../log.js';
import type { ProxyHost, TcpProxy } from '../proxy/tcp-proxy.js';
import { VirtualUdp } from '../proxy/virtual-udp.js';
import { Socks5Server } from '../socks5/server.js';

export class Fronts {
  private constructor(readonly udp: VirtualUdp, private readonly socks: Socks5Server | null) {}

  static async start(host: ProxyHost, proxy: TcpProxy, log: Logger): Promise<Fronts> {
    const cfg = host.config;
    const udp = new VirtualUdp(host);
    const socks = cfg.socks5
      ? await Socks5Server.start({ ...cfg.socks5, allowOutside: cfg.socks5AllowOutside === true }, proxy.socketCarriers(), udp, log)
      : null;
    return new Fronts(udp, socks);
  }

  close(): void {
    this.socks?.close();
  }
}
