/**
 * kcptube's output: one timestamped line per event on stderr and, with log_path, appended to
 * `<log_path>/<mode>_output.log` as kcptube names its files. Counters shared by a config's
 * tunnels live here too.
 */
import { openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { TstierError } from '../errors.js';
import { IoErrorLog } from '../io/io-error-log.js';
import { newSnmp, type KcptunSnmp } from '../transport/session/snmp.js';
import { newTubeCounters, type TubeCounters } from './router.js';

export class TubeLog {
  /** `<log_path>/<mode>_output.log`, opened once; null without log_path. */
  private readonly fd: number | null = null;

  constructor(
    /** Prefix naming the config file, so several configs in one process stay apart. */
    private readonly tag: string,
    logPath: string,
    mode: string,
    /** False for embedders (benchmarks) that want the lines in log_path only. */
    private readonly toStderr = true,
  ) {
    if (logPath === '') return;
    const file = join(logPath, `${mode}_output.log`);
    try {
      this.fd = openSync(file, 'a');
    } catch (e) {
      // A log the operator asked for and will not get is a configuration error, not a quiet loss.
      throw new TstierError('TSTIER_E_BAD_CONFIG', `${tag}: log_path: cannot write ${file}: ${(e as Error).message.replace(/, open '.*'$/, '')}`);
    }
  }

  line(message: string): void {
    const text = `${new Date().toISOString()} [${this.tag}] ${message}\n`;
    if (this.toStderr) process.stderr.write(text);
    if (this.fd !== null) {
      try {
        writeSync(this.fd, text);
      } catch {
        // a full disk must not stop the tunnel; the line went to stderr too
      }
    }
  }
}

/** What every tunnel of one config shares. */
export interface TubeContext {
  log: TubeLog;
  /** Socket errors (UDP sends, accepts, dials): counted, each cause logged once. */
  ioErrors: IoErrorLog;
  snmp: KcptunSnmp;
  counters: TubeCounters;
}

export function newContext(log: TubeLog): TubeContext {
  return { log, ioErrors: new IoErrorLog((line) => log.line(line)), snmp: newSnmp(), counters: newTubeCounters() };
}
