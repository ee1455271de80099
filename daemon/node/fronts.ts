/**
 * The node's front doors for applications that do not go through the TUN: the SOCKS5 server
 * (`--socks5`) and the port forwards (`--port-forward`, changeable at run time). They open flows
 * through the TCP proxy's carriers and datagrams from the node's virtual address, so they work with
 * --no-tun.
 */
import type { Logger } from '../log.js';
import { PortForwards } from '../port-forward/forwarder.js';
import type { ProxyHost } from '../proxy/proxy-host.js';
import type { TcpProxy } from '../proxy/tcp-proxy.js';
import { VirtualUdp } from '../proxy/virtual-udp.js';
import { Socks5Server } from '../socks5/server.js';

export class Fronts {
  private constructor(readonly portForwards: PortForwards, private readonly socks: Socks5Server | null) {}

  static async start(host: ProxyHost, proxy: TcpProxy, log: Logger): Promise<Fronts> {
    const cfg = host.config;
    const carriers = proxy.socketCarriers();
    const udp = new VirtualUdp(host);
    const forwards = new PortForwards(carriers, udp, log);
    let socks: Socks5Server | null = null;
    try {
      for (const spec of cfg.portForwards ?? []) await forwards.add(spec);
      if (cfg.socks5) socks = await Socks5Server.start({ ...cfg.socks5, allowOutside: cfg.socks5AllowOutside === true }, carriers, udp, log);
    } catch (e) {
      forwards.close();
      throw e;
    }
    return new Fronts(forwards, socks);
  }

  close(): void {
    this.socks?.close();
    this.portForwards.close();
  }
}
