/**
 * easytier-core: flags + ET_* env + TOML → NodeConfig → one Node, and its gRPC portal.
 *
 * Exit status: 0 after SIGINT/SIGTERM and a clean close; 2 when it cannot start as configured — a
 * bad flag, key or file, a listener or portal that cannot bind, a TUN or addon that cannot be
 * opened — with one line on stderr naming what; 1 for a bug. systemd does not restart after a 2
 * (RestartPreventExitStatus): the same configuration would fail the same way.
 */
import { loadNodeConfig } from './config/load.js';
import { TstierError } from './errors.js';
import { lowerHelperThreads } from './io/helper-threads.js';
import { createLogger, isLogLevel, setLogLevel } from './log.js';
import { startRpcServer, type RpcServer } from './rpc/server.js';
import { portalRisk } from './rpc/whitelist.js';

const log = createLogger('main');

// A node that cannot close within this long is stuck; better to exit than to hang systemd.
const CLOSE_TIMEOUT_MS = 5000;

interface Closable { close(): Promise<void> }

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let loaded;
  try {
    loaded = loadNodeConfig(argv, env);
  } catch (err) {
    if (!(err instanceof TstierError)) throw err;
    process.stderr.write(`easytier-core: ${err.message}\n`);
    return 2;
  }
  if (loaded.kind === 'help') {
    process.stdout.write(loaded.text);
    return 0;
  }
  const { config } = loaded;
  if (isLogLevel(config.logLevel)) setLogLevel(config.logLevel);
  for (const warning of loaded.warnings) log.warn(warning);

  const running: Closable[] = [];
  watchForFatalErrors(running);
  try {
    // Loaded only now, so --help and config errors answer without pulling in the data path.
    const { Node } = await import('./node.js');
    const node = await Node.start(config);
    running.push(node);
    const rpc: RpcServer = await startRpcServer(node, config.rpcPortal, config.rpcPortalWhitelist);
    const risk = portalRisk(rpc.address, config.rpcPortalWhitelist);
    if (risk) log.warn(risk);
    running.unshift(rpc); // close the portal first: no queries against a half-closed node
    await lowerHelperThreads();
    log.info(`rpc portal listening on ${rpc.address}`, { instance: config.instanceName });
  } catch (err) {
    await closeAll(running);
    if (!(err instanceof TstierError)) throw err;
    process.stderr.write(`easytier-core: ${err.message}\n`);
    return 2;
  }

  const signal = await nextSignal();
  log.info(`${signal}: shutting down`);
  return (await closeAll(running)) ? 0 : 1;
}

function nextSignal(): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (name: string): void => {
      // A second signal while closing means "now": do not make the operator wait for the timeout.
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve(name);
    };
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.once('SIGTERM', () => onSignal('SIGTERM'));
  });
}

/**
 * A TstierError nobody caught is an expected failure (a peer's socket error, say) that some
 * path forgot to handle: logged, and the node keeps running. Anything else is a bug: logged with
 * its stack, then the node closes and the process exits 1.
 */
function watchForFatalErrors(running: readonly Closable[]): void {
  const onError = (err: unknown, origin: string): void => {
    if (err instanceof TstierError) {
      log.error(`unhandled ${origin}`, { err });
      return;
    }
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    log.error(`bug: unhandled ${origin}; exiting`, { detail });
    process.stderr.write(`easytier-core: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    void closeAll(running).finally(() => process.exit(1));
  };
  process.on('uncaughtException', (err) => onError(err, 'exception'));
  process.on('unhandledRejection', (reason) => onError(reason, 'rejection'));
}

/** Closes in order; true when everything closed cleanly within the timeout. */
async function closeAll(items: readonly Closable[]): Promise<boolean> {
  let clean = true;
  for (const item of items) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS); });
    try {
      if ((await Promise.race([item.close(), timeout])) === 'timeout') {
        log.error(`close did not finish within ${CLOSE_TIMEOUT_MS} ms`);
        clean = false;
      }
    } catch (err) {
      log.error('close failed', { err });
      clean = false;
    } finally {
      clearTimeout(timer);
    }
  }
  return clean;
}
