/**
 * `--metrics-listen [IP:]PORT`: the Prometheus text at GET /metrics over HTTP, for a scraper
 * (loopback unless an address is given). Anything else is 404; bounded to a few connections with
 * short timeouts, since it answers from memory.
 */
import { createServer, type Server } from 'node:http';
import { TstierError } from '../errors.js';
import type { Logger } from '../log.js';
import { PROMETHEUS_CONTENT_TYPE } from './prometheus.js';

const MAX_CONNECTIONS = 32;
const TIMEOUT_MS = 10_000;

export class MetricsHttp {
  private constructor(private readonly server: Server, readonly address: string) {}

  static async start(listen: string, text: () => string, log: Logger): Promise<MetricsHttp> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' || path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('try GET /metrics\n');
        return;
      }
      let body: string;
      try {
        body = text();
      } catch (err) {
        log.warn('metrics failed', { err });
        res.writeHead(500).end();
        return;
      }
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE }).end(body);
    });
    server.maxConnections = MAX_CONNECTIONS;
    server.requestTimeout = TIMEOUT_MS;
    server.headersTimeout = TIMEOUT_MS;
    const sep = listen.lastIndexOf(':');
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new TstierError(e.code === 'EADDRINUSE' ? 'TSTIER_E_ADDR_IN_USE' : 'TSTIER_E_BAD_CONFIG',
        `--metrics-listen: cannot listen on ${listen}: ${e.code ?? e.message}`)));
      server.listen(Number(listen.slice(sep + 1)), listen.slice(0, sep).replace(/^\[|\]$/g, ''), () => resolve());
    });
    const a = server.address() as { address: string; port: number };
    const address = a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    log.info(`metrics on http://${address}/metrics`);
    return new MetricsHttp(server, address);
  }

  close(): void {
    this.server.closeAllConnections();
    this.server.close();
  }
}
