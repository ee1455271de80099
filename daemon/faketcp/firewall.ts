/**
 * The packet-filter rules fake TCP needs, in an nftables table of this process's own.
 *
 * Why rules at all: each fake connection has a real kernel TCP connection under it (the handshake
 * that NATs and firewalls see). The kernel answers the segments we send raw with ACKs, duplicate
 * ACKs and window updates of its own. As xtaci/tcpraw does, the kernel socket's TTL is set to 1 after
 * the handshake, and a rule drops that connection's TTL-1 segments on their way out; what we send
 * raw leaves with the default TTL and passes.
 *
 * Why a table per process (`inet tstier_faketcp_<pid>`): removing it removes exactly our rules and no
 * one else's, in one step, with no rule in any other table or chain. It is removed on every way out
 * the process has (the 'exit' event runs for process.exit from the signal handlers and for a fatal
 * uncaught error); a table whose process is gone (SIGKILL) is found and removed by the next start.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { TstierError } from '../errors.js';

export const TABLE_PREFIX = 'tstier_faketcp_';
const CAP_NET_ADMIN = 12;
const CAP_NET_RAW = 13;

function nft(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('nft', args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(((stderr || err.message) as string).trim().split('\n')[0]));
      else resolve(stdout);
    });
  });
}

/** True if /proc/self/status lists the capability among the effective ones. */
function hasCapability(bit: number): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m !== null && (BigInt(`0x${m[1]}`) & (1n << BigInt(bit))) !== 0n;
}

/**
 * Fails with one line naming the missing capability: raw sockets need CAP_NET_RAW, the rules
 * CAP_NET_ADMIN. `what` names the flag or URI that asked for fake TCP.
 */
export function requireFakeTcpCapabilities(what: string): void {
  for (const [bit, name, use] of [[CAP_NET_RAW, 'CAP_NET_RAW', 'raw sockets'], [CAP_NET_ADMIN, 'CAP_NET_ADMIN', 'its nftables rules']] as const) {
    if (!hasCapability(bit)) throw new TstierError('TSTIER_E_BAD_CONFIG', `${what}: fake TCP needs the ${name} capability (${use}); run as root or grant it`);
  }
}

/** A table left by a process that is gone: its pid is free, or taken by something that is not Node (also the redirect termination's, intercept/redirect/rules.ts). */
export function isStale(pid: number): boolean {
  if (pid === process.pid) return false;
  if (!existsSync(`/proc/${pid}`)) return true;
  try {
    return !readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('node');
  } catch {
    return true;
  }
}

export class FakeTcpFirewall {
  private static instance: FakeTcpFirewall | undefined;
  readonly table = `${TABLE_PREFIX}${process.pid}`;
  private ready: Promise<void> | undefined;
  private created = false;

  /** The process's one firewall. */
  static get(): FakeTcpFirewall {
    return (FakeTcpFirewall.instance ??= new FakeTcpFirewall());
  }

  /** Removes stale tables of killed processes and creates ours (once per process). */
  ensure(): Promise<void> {
    this.ready ??= this.setUp().catch((e: Error) => {
      this.ready = undefined;
      throw new TstierError('TSTIER_E_BAD_CONFIG', `fake TCP: cannot set up nftables table ${this.table}: ${e.message}`);
    });
    return this.ready;
  }

  private async setUp(): Promise<void> {
    const listing = await nft(['list', 'tables', 'inet']);
    for (const m of listing.matchAll(new RegExp(`^table inet ${TABLE_PREFIX}(\\d+)$`, 'gm'))) {
      if (isStale(Number(m[1]))) await nft(['delete', 'table', 'inet', `${TABLE_PREFIX}${m[1]}`]).catch(() => undefined);
    }
    await new Promise<void>((resolve, reject) => {
      const child = execFile('nft', ['-f', '-'], { timeout: 10_000 }, (err, _o, stderr) =>
        err ? reject(new Error((stderr || err.message).trim().split('\n')[0])) : resolve());
      child.stdin!.end(
        `table inet ${this.table} {\n` +
        `  chain output { type filter hook output priority filter; policy accept; }\n` +
        `}\n`);
    });
    if (!this.created) {
      this.created = true;
      process.once('exit', () => this.removeSync());
    }
  }

  /**
   * Adds a rule dropping the kernel's TTL-1 segments that match `match` (nft syntax, e.g.
   * "tcp sport 4000"); resolves to the rule's handle for remove().
   */
  async dropKernelSegments(match: string): Promise<number> {
    await this.ensure();
    const out = await nft(['-e', '-a', 'add', 'rule', 'inet', this.table, 'output', ...match.split(' '), 'ip', 'ttl', '1', 'counter', 'drop']);
    const m = /# handle (\d+)/.exec(out);
    if (!m) throw new Error(`nft did not report the handle of the rule for ${match}`);
    return Number(m[1]);
  }

  /** Removes one rule; a table already gone (process exiting) is fine. */
  async remove(handle: number): Promise<void> {
    await nft(['delete', 'rule', 'inet', this.table, 'output', 'handle', String(handle)]).catch(() => undefined);
  }

  /** Deletes the whole table, synchronously: this runs from the process's 'exit' event. */
  removeSync(): void {
    if (!this.ready) return;
    try {
      execFileSync('nft', ['delete', 'table', 'inet', this.table], { stdio: 'ignore', timeout: 5000 });
    } catch {
      // already gone
    }
    this.ready = undefined;
  }
}
