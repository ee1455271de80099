/**
 * The kernel listeners that injected SYNs land on: a few TCP servers on the node's virtual address.
 * Several ports, because Linux may give one app source port to flows toward different destinations,
 * and each (listener port, app port) pair must name exactly one flow.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { TstierError } from '../../errors.js';

export const KERNEL_LISTENERS = 4;

export class KernelListeners {
  private constructor(private readonly servers: Server[], readonly ports: number[]) {}

  static async open(address: string, onAccept: (socket: Socket, listenerPort: number) => void,
    count = KERNEL_LISTENERS): Promise<KernelListeners> {
    const servers: Server[] = [];
    const ports: number[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: address, port: 0, backlog: 1024 }, () => resolve());
        });
        const port = (server.address() as { port: number }).port;
        server.on('connection', (s: Socket) => onAccept(s, port));
        server.on('error', () => undefined); // accept errors (EMFILE...) must not kill the node
        servers.push(server);
        ports.push(port);
      }
    } catch (e) {
      for (const s of servers) s.close();
      throw new TstierError('TSTIER_E_ADDR_IN_USE', `kcp proxy: cannot listen on ${address}: ${(e as Error).message}`, { cause: e });
    }
    return new KernelListeners(servers, ports);
  }

  /** The listening sockets' descriptors (Linux), for the socket options Node has no API for. */
  get fds(): number[] {
    return this.servers.map((s) => (s as unknown as { _handle: { fd: number } })._handle.fd);
  }

  close(): void {
    for (const s of this.servers) s.close();
  }
}
