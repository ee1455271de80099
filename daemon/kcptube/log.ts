/**
 * kcptube's output: one timestamped line per event on stderr and, with log_path, appended to
 * `<log_path>/<mode>_output.log` as kcptube names its files. Counters shared by a config's
 * tunnels live here too.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { newSnmp, type KcptunSnmp } from '../transport/session/snmp.js';
import { newTubeCounters, type TubeCounters } from './router.js';

export class TubeLog {
  private readonly file: string;

  constructor(
    /** Prefix naming the config file, so several configs in one process stay apart. */
    private readonly tag: string,
    logPath: string,
    mode: string,
    /** False for embedders (benchmarks) that want the lines in log_path only. */
    private readonly toStderr = true,
  ) {
    this.file = logPath === '' ? '' : join(logPath, `${mode}_output.log`);
  }

  line(message: string): void {
    const text = `${new Date().toISOString()} [${this.tag}] ${message}\n`;
    if (this.toStderr) process.stderr.write(text);
    if (this.file !== '') {
      try {
        appendFileSync(this.file, text);
      } catch {
        // a log file that cannot be written must not stop the tunnel
      }
    }
  }
}

/** What every tunnel of one config shares. */
export interface TubeContext {
  log: TubeLog;
  snmp: KcptunSnmp;
  counters: TubeCounters;
}

export function newContext(log: TubeLog): TubeContext {
  return { log, snmp: newSnmp(), counters: newTubeCounters() };
}
