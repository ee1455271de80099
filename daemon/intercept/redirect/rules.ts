/**
 * The packet-filter rule of the redirect termination (docs/userspace-stack.md, "Redirect"): every TCP
 * connection this host opens through the TUN is redirected to the proxy's listener on 127.0.0.1,
 * except the daemon's own sockets, which carry EXEMPT_MARK (SO_MARK, set before their SYN leaves).
 *
 * nftables, in a table of this process's own (`ip tstier_redirect_<pid>_<n>`), as fake TCP does
 * (faketcp/firewall.ts): the NAT chain at the output hook is the same thing as an iptables
 * `-t nat -A OUTPUT ... -j REDIRECT` rule in a chain of ours, but removing the table removes exactly
 * our rule, in one step, and installing it is one atomic file. Matching on the output interface (the
 * TUN) rather than on a list of destinations follows every peer's address and proxied range as the
 * kernel routes change, with no rule to keep in step with them.
 *
 * A second chain gives the redirected connections long half-closed timeouts (HALF_CLOSED_SECS). It runs
 * after the redirect (so it matches our listener's address) and before conntrack confirms the entry,
 * which is when a timeout policy can still be attached; at the raw priority there is no entry yet, and
 * the policy was silently not applied.
 *
 * Removed on close and on every way out of the process (the 'exit' event); a table whose process is
 * gone (SIGKILL) is removed by the next start. Until then the stale rule sends the host's TCP into
 * the TUN to a closed port: those connections are refused.
 */
import { execFile, execFileSync } from 'node:child_process';
import { isStale } from '../../faketcp/firewall.js';

export const TABLE_PREFIX = 'tstier_redirect_';
/** SO_MARK of the daemon's own connections through the TUN: the rule lets them pass ("ts"). */
export const EXEMPT_MARK = 0x7473;
const NFT_TIMEOUT_MS = 10_000;
/**
 * How long conntrack keeps a redirected connection that one side has half-closed (its own default
 * for ESTABLISHED, 5 days). The redirect lives in a conntrack entry, and conntrack forgets a
 * connection 60 s into CLOSE_WAIT by default: an application that sent its request and FIN, then
 * waited over a minute for the answer (the proxy still carrying it), never got it, because our
 * listener's replies were no longer translated back (8 of 1,000 flows under load). The proxy's own
 * --proxy-close-wait bounds a half-closed flow.
 */
const HALF_CLOSED_SECS = 432_000;

let tablesMade = 0;

function nft(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('nft', args, { timeout: NFT_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(((stderr || err.message) as string).trim().split('\n')[0]));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

export class RedirectRules {
  private removed = false;
  private readonly onExit = (): void => this.remove();

  private constructor(readonly table: string) {}

  /** Removes stale tables of killed processes, then redirects TCP leaving through `dev` to 127.0.0.1:`port`. */
  static async install(dev: string, port: number): Promise<RedirectRules> {
    const listing = await nft(['list', 'tables', 'ip']);
    for (const m of listing.matchAll(new RegExp(`^table ip (${TABLE_PREFIX}(\\d+)_\\d+)$`, 'gm'))) {
      if (isStale(Number(m[2]))) await nft(['delete', 'table', 'ip', m[1]!]).catch(() => undefined);
    }
    const rules = new RedirectRules(`${TABLE_PREFIX}${process.pid}_${tablesMade++}`);
    // The table goes with the process even if close() is never reached.
    process.once('exit', rules.onExit);
    await nft(['-f', '-'],
      `table ip ${rules.table} {\n` +
      `  ct timeout half_closed {\n` +
      `    protocol tcp; l3proto ip;\n` +
      `    policy = { fin_wait: ${HALF_CLOSED_SECS}, close_wait: ${HALF_CLOSED_SECS}, last_ack: ${HALF_CLOSED_SECS} }\n` +
      `  }\n` +
      `  chain timeouts {\n` +
      `    type filter hook output priority filter; policy accept;\n` +
      `    ip daddr 127.0.0.1 tcp dport ${port} ct timeout set "half_closed"\n` +
      `  }\n` +
      `  chain output {\n` +
      `    type nat hook output priority -100; policy accept;\n` +
      `    meta mark ${EXEMPT_MARK} return\n` +
      `    oifname ${JSON.stringify(dev)} ip protocol tcp redirect to :${port}\n` +
      `  }\n` +
      `}\n`).catch((e: unknown) => {
      process.off('exit', rules.onExit); // nothing was installed
      throw e;
    });
    return rules;
  }

  /** Deletes the table, synchronously (this also runs from the process's 'exit' event). */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    process.off('exit', this.onExit);
    try {
      execFileSync('nft', ['delete', 'table', 'ip', this.table], { stdio: 'ignore', timeout: 5000 });
    } catch {
      // already gone
    }
  }
}
