/**
 * Keeps the kernel's routes for other nodes' proxied CIDRs pointing at our TUN, as EasyTier does,
 * so local traffic to a remote LAN enters the node. Changes run one `ip route` at a time, in
 * order; a failure is logged and retried at the next sync.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../log.js';

export class KernelRoutes {
  private installed = new Set<string>();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly dev: string, private readonly log: Logger) {}

  /** Makes the TUN routes equal `prefixes` (network/len strings). */
  sync(prefixes: Iterable<string>): Promise<void> {
    const want = new Set(prefixes);
    this.queue = this.queue.then(async () => {
      for (const p of want) if (!this.installed.has(p) && (await this.ip('replace', p))) this.installed.add(p);
      for (const p of this.installed) if (!want.has(p) && (await this.ip('del', p))) this.installed.delete(p);
    });
    return this.queue;
  }

  private ip(verb: 'replace' | 'del', prefix: string): Promise<boolean> {
    return new Promise((resolve) => {
      execFile('ip', ['route', verb, prefix, 'dev', this.dev], (err, _out, stderr) => {
        if (err) this.log.warn(`ip route ${verb} failed`, { prefix, dev: this.dev, err: stderr.trim() || err.message });
        resolve(!err);
      });
    });
  }
}
