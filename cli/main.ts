/**
 * easytier-cli [-p/--rpc-portal ADDR] [-o/--output table|json] <node|peer|route|proxy>
 * Exit status: 0 success, 1 the daemon could not answer, 2 bad usage. Errors are one line.
 */
import { parseArgs } from 'node:util';
import { parseRpcPortal } from '../daemon/config/values.js';
import { TstierError } from '../daemon/errors.js';
import { callRpc } from './client.js';
import { nodeCommand } from './node.js';
import { OUTPUT_FORMATS, render, terminalSafe, type OutputFormat, type Row } from './output.js';
import { peerCommand } from './peer.js';
import { portForwardCommand } from './port-forward.js';
import { proxyCommand } from './proxy.js';
import { routeCommand } from './route.js';
import { statsCommand } from './stats.js';
import type { Subcommand } from './subcommand.js';

const SUBCOMMANDS: readonly Subcommand[] = [nodeCommand, peerCommand, routeCommand, proxyCommand, portForwardCommand, statsCommand];
const DEFAULT_PORTAL = '127.0.0.1:15888';

class UsageError extends Error {}

interface Invocation {
  portal: string;
  format: OutputFormat;
  command: Subcommand;
  method: string;
  request: object;
  raw?: ((response: unknown) => string) | undefined;
  /** Columns and rows other than the command's own (--summary). */
  view?: { columns: readonly string[]; toRows(response: unknown): Row[] } | undefined;
}

function usage(): string {
  return [
    'Usage: easytier-cli [-p ADDR] [-o table|json] [--summary] <command> [args]',
    '',
    'Options:',
    `  -p, --rpc-portal <ADDR>  easytier-core's rpc portal, ip:port or port (default ${DEFAULT_PORTAL})`,
    '  -o, --output <FORMAT>    table (default) or json',
    '      --summary            proxy: count flows by transport, state and role instead of listing them',
    '  -h, --help               print this help',
    '',
    'Commands:',
    ...SUBCOMMANDS.map((c) => `  ${c.name.padEnd(14)}${c.summary}`),
    '',
  ].join('\n');
}

function parseInvocation(argv: readonly string[]): Invocation | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        'rpc-portal': { type: 'string', short: 'p' },
        output: { type: 'string', short: 'o' },
        help: { type: 'boolean', short: 'h' },
        summary: { type: 'boolean' },
      },
    });
  } catch (err) {
    // node:util's messages run on with advice about '--'; the first sentence names the problem.
    throw new UsageError((err as Error).message.split(/\.\s/)[0] ?? 'bad arguments');
  }
  if (parsed.values.help === true) return 'help';
  const [name, ...extra] = parsed.positionals;
  const command = SUBCOMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    throw new UsageError(name === undefined ? 'missing command' : `unknown command "${name}"`);
  }
  let call: Pick<Invocation, 'method' | 'request' | 'raw' | 'view'> = { method: command.method, request: {} };
  if (parsed.values.summary === true) {
    if (!command.summaryView) throw new UsageError(`--summary: only for proxy, not ${command.name}`);
    call.view = command.summaryView;
  }
  if (command.request) {
    try {
      call = { ...call, ...command.request(extra) };
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  } else if (extra.length > 1 || (extra.length === 1 && extra[0] !== 'list' && extra[0] !== 'info')) {
    // EasyTier spells listings as `peer list`, `route list`: accept that form too.
    throw new UsageError(`unexpected argument "${extra.join(' ')}"`);
  }
  const format = parsed.values.output ?? 'table';
  if (!OUTPUT_FORMATS.includes(format as OutputFormat)) throw new UsageError(`-o: must be table or json, got "${format}"`);
  let portal: string;
  try {
    portal = parseRpcPortal(parsed.values['rpc-portal'] ?? DEFAULT_PORTAL, '-p');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return { portal, format: format as OutputFormat, command, ...call };
}

/** Runs one invocation; returns the exit status. Never throws. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const invocation = parseInvocation(argv);
    if (invocation === 'help') {
      process.stdout.write(usage());
      return 0;
    }
    const { portal, format, command, method, request, raw, view } = invocation;
    const response = await callRpc(portal, command.service, method, request);
    const { columns, toRows } = view ?? command;
    process.stdout.write(raw ? raw(response) : render(toRows(response), columns, command.layout, format));
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`easytier-cli: ${err.message} (see --help)\n`);
      return 2;
    }
    // Error text may quote the daemon (gRPC details), or whatever answers on that port: made safe.
    if (err instanceof TstierError) {
      process.stderr.write(`easytier-cli: ${terminalSafe(err.message)}\n`);
      return 1;
    }
    // A bug in the CLI itself: still one line on stderr, but say it is one.
    process.stderr.write(`easytier-cli: internal error: ${terminalSafe(err instanceof Error ? err.message : String(err))}\n`);
    return 1;
  }
}
