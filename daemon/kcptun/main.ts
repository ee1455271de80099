/**
 * `tstier-kcptun client|server [flags]`: parses kcptun's flags, starts the role, and maps errors to
 * one line on stderr and exit status 2 (bad flag/config, port in use) or 1 (anything else).
 */
import { lowerHelperThreads } from '../io/helper-threads.js';
import { TstierError } from '../errors.js';
import { parseKcptunArgs, type KcptunRole } from './config.js';
import { KcptunClient } from './client.js';
import { KcptunServer } from './server.js';

const USAGE = `usage: tstier-kcptun client|server [flags]   (kcptun v20210922 flags; -h for the list)
client: -l/--localaddr, -r/--remoteaddr, --conn, --autoexpire, --scavengettl
server: -l/--listen, -t/--target
both:   --key ($KCPTUN_KEY), --crypt, --mode, --nodelay --interval --resend --nc, --mtu, --sndwnd, --rcvwnd,
        --ds/--datashard, --ps/--parityshard, --dscp, --nocomp, --acknodelay, --sockbuf, --smuxver,
        --smuxbuf, --framesize, --streambuf, --keepalive, --closewait, --ratelimit, --snmplog,
        --snmpperiod, --log, --quiet, --tcp (fake TCP), -c config.json
`;

function fail(e: unknown): never {
  const err = e instanceof TstierError ? e : new TstierError('TSTIER_E_BAD_CONFIG', String((e as Error)?.message ?? e));
  process.stderr.write(`tstier-kcptun: ${err.message}\n`);
  process.exit(err.code === 'TSTIER_E_BAD_CONFIG' || err.code === 'TSTIER_E_ADDR_IN_USE' ? 2 : 1);
}

export function main(argv: string[]): void {
  const role = argv[0];
  if (role !== 'client' && role !== 'server') {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  let parsed;
  try {
    parsed = parseKcptunArgs(role as KcptunRole, argv.slice(1));
  } catch (e) {
    fail(e);
  }
  if (parsed.help) {
    process.stdout.write(parsed.help === 'version' ? 'tstier-kcptun (kcptun v20210922 compatible)\n' : USAGE);
    process.exit(0);
  }
  let node: KcptunClient | KcptunServer;
  try {
    node = role === 'client' ? new KcptunClient(parsed.config) : new KcptunServer(parsed.config);
  } catch (e) {
    fail(e);
  }
  const stop = (): void => {
    void node.stop().finally(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  node.start().then(lowerHelperThreads, fail);
}
