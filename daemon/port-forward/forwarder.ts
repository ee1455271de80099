/**
 * Port forwarding (`--port-forward`, `easytier-cli port-forward add|remove`): a local port whose
 * traffic goes to one address in the virtual network.
 *  - tcp: each accepted connection is a flow from a socket (dialFromSocket): the TUN flows'
 *    transport choice, fallback and fidelity, a row in `easytier-cli proxy`. A refused destination
 *    resets the local connection (the application sees ECONNRESET right after connect, the nearest
 *    a listener that already accepted can come to a refusal); an unreachable one closes it.
 *  - udp: each local client (address and port) gets its own socket on the node's virtual address,
 *    so replies find their way back; a client idle for UDP_IDLE_MS is forgotten, and at most
 *    MAX_UDP_CLIENTS are kept per forward (the oldest goes first).
 * Removing a forward closes its listener; TCP connections already open finish on their own.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import type { PortForwardSpec } from '../config/node-config.js';
import { parsePortForward, portForwardText } from '../config/port-forward-value.js';
import { DialStatus } from '../carrier/flow-frames.js';
import { TstierError } from '../errors.js';
import { nowMs } from '../io/clock.js';
import type { Logger } from '../log.js';
import { parseIpAddress } from '../packet/address.js';
import { socketAddrOf } from '../packet/flow-key.js';
import { endpointText } from '../proxy/flow-table.js';
import { dialFromSocket, type SocketCarriers } from '../proxy/socket-flow.js';
import type { VirtualUdp, VirtualUdpSocket } from '../proxy/virtual-udp.js';
import type { PortForwardControl, PortForwardView } from '../rpc/source.js';

export const MAX_TCP_CONNECTIONS = 1024;
export const MAX_UDP_CLIENTS = 256;
export const UDP_IDLE_MS = 60_000;
/** At most this many forwards at once, so the RPC cannot make the node hold unbounded listeners. */
export const MAX_FORWARDS = 256;

interface Forward {
  readonly spec: PortForwardSpec;
  active(): number;
  close(): void;
}

export class PortForwards {
  private readonly forwards = new Map<string, Forward>();

  constructor(private readonly carriers: SocketCarriers, private readonly udp: VirtualUdp, private readonly log: Logger) {}

  /** Throws a TstierError naming the spec when it is a duplicate or its local port cannot be bound. */
  async add(spec: PortForwardSpec): Promise<void> {
    const key = portForwardText(spec);
    if (this.forwards.has(key)) throw new TstierError('TSTIER_E_BAD_CONFIG', `port forward ${key} already exists`);
    if (this.forwards.size >= MAX_FORWARDS) throw new TstierError('TSTIER_E_BAD_CONFIG', `port forward ${key}: at most ${MAX_FORWARDS} forwards`);
    const fwd = spec.proto === 'tcp' ? await this.tcp(spec, key) : await this.udpForward(spec, key);
    this.forwards.set(key, fwd);
    this.log.info(`port forward ${key}`);
  }

  /** False when no such forward exists. */
  remove(spec: PortForwardSpec): boolean {
    const key = portForwardText(spec);
    const fwd = this.forwards.get(key);
    if (!fwd) return false;
    this.forwards.delete(key);
    fwd.close();
    this.log.info(`port forward ${key} removed`);
    return true;
  }

  list(): PortForwardView[] {
    return [...this.forwards.entries()].map(([key, f]) => ({
      spec: key, proto: f.spec.proto, bind: endpointText(f.spec.bind), dst: endpointText(f.spec.dst), active: f.active(),
    }));
  }

  /** The RPC's view: specs as text, parsed as --port-forward parses them. */
  control(): PortForwardControl {
    return {
      list: () => this.list(),
      add: (text) => this.add(parsePortForward(text, 'port-forward')),
      remove: (text) => this.remove(parsePortForward(text, 'port-forward')),
    };
  }

  close(): void {
    for (const f of this.forwards.values()) f.close();
    this.forwards.clear();
  }

  private async tcp(spec: PortForwardSpec, key: string): Promise<Forward> {
    // The destination in binary once; parsePortForward took only IP addresses.
    const dst = socketAddrOf(spec.dst.ip, spec.dst.port);
    if (!dst) throw new TstierError('TSTIER_E_BAD_CONFIG', `port-forward ${key}: ${spec.dst.ip} is not an IP address`);
    const server: Server = createServer({ allowHalfOpen: true });
    server.maxConnections = MAX_TCP_CONNECTIONS;
    let open = 0;
    server.on('connection', (socket: Socket) => {
      open++;
      socket.pause();
      socket.on('error', () => undefined); // 'close' follows
      const srcIp = (socket.remoteAddress ?? '0.0.0.0').replace(/^::ffff:(?=\d+\.)/, '');
      const src = { ip: parseIpAddress(srcIp) ?? new Uint8Array(4), port: socket.remotePort ?? 0 };
      let answered = false;
      const dial = dialFromSocket(this.carriers, { src, dst, label: `port-forward ${key}` }, (r) => {
        answered = true;
        if (r.ok) return r.attach(socket, new Uint8Array(0));
        if (r.status === DialStatus.Refused) socket.resetAndDestroy();
        else socket.destroy();
      });
      socket.once('close', () => {
        open--;
        if (!answered) dial.abort();
      });
    });
    await listen(key, (done) => server.listen(spec.bind.port, spec.bind.ip, done), server);
    return { spec, active: () => open, close: () => server.close() };
  }

  private async udpForward(spec: PortForwardSpec, key: string): Promise<Forward> {
    const sock: UdpSocket = createSocket(spec.bind.ip.includes(':') ? 'udp6' : 'udp4');
    const clients = new Map<string, { virtual: Promise<VirtualUdpSocket>; last: number }>();
    const forget = (id: string): void => {
      const c = clients.get(id);
      clients.delete(id);
      void c?.virtual.then((v) => v.close(), () => undefined);
    };
    sock.on('message', (msg, rinfo) => {
      const id = `${rinfo.address}|${rinfo.port}`;
      let c = clients.get(id);
      if (!c) {
        if (clients.size >= MAX_UDP_CLIENTS) forget(clients.keys().next().value!);
        const virtual = this.udp.open((from, payload) => {
          // Only the forward's destination may answer through it.
          if (from.ip === spec.dst.ip && from.port === spec.dst.port) sock.send(payload, rinfo.port, rinfo.address);
        });
        c = { virtual, last: 0 };
        clients.set(id, c);
        virtual.catch((e: Error) => {
          this.log.warn(`port forward ${key}: ${e.message}`);
          forget(id);
        });
      }
      c.last = nowMs();
      void c.virtual.then((v) => v.send(spec.dst, msg), () => undefined);
    });
    sock.on('error', () => undefined); // a failed send to one client must not end the forward
    const sweep = setInterval(() => {
      const cutoff = nowMs() - UDP_IDLE_MS;
      for (const [id, c] of clients) if (c.last < cutoff) forget(id);
    }, UDP_IDLE_MS / 4);
    sweep.unref();
    await listen(key, (done) => sock.bind(spec.bind.port, spec.bind.ip, done), sock);
    return {
      spec, active: () => clients.size,
      close: () => {
        clearInterval(sweep);
        for (const id of [...clients.keys()]) forget(id);
        sock.close();
      },
    };
  }
}

/** Binds, turning a bind error into a one-line TstierError naming the forward. */
function listen(key: string, bind: (done: () => void) => void, emitter: Server | UdpSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      const code = e.code === 'EADDRINUSE' ? 'TSTIER_E_ADDR_IN_USE' : 'TSTIER_E_BAD_CONFIG';
      reject(new TstierError(code, `port forward ${key}: cannot bind the local address: ${e.code ?? e.message}`));
    };
    emitter.once('error', onError);
    bind(() => {
      emitter.off('error', onError);
      resolve();
    });
  });
}
