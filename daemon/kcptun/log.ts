/**
 * kcptun's log: Go's standard logger format (`2006/01/02 15:04:05 message`), to stderr or to the
 * --log file (appended). One instance per process.
 */
import { openSync, writeSync } from 'node:fs';
import { TstierError } from '../errors.js';

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** Expands the Go time-layout tokens kcptun users put in paths (e.g. `./snmp-20060102.log`). */
export function goTimeLayout(layout: string, d: Date): string {
  const tokens: Record<string, string> = {
    '2006': String(d.getFullYear()),
    '01': pad(d.getMonth() + 1),
    '02': pad(d.getDate()),
    '15': pad(d.getHours()),
    '04': pad(d.getMinutes()),
    '05': pad(d.getSeconds()),
  };
  return layout.replace(/2006|01|02|15|04|05/g, (t) => tokens[t]!);
}

export class KcptunLog {
  /** The --log file, opened once: kcptun exits when it cannot open it, and so do we. */
  private readonly fd: number | null;

  constructor(file: string, readonly quiet: boolean) {
    try {
      this.fd = file ? openSync(file, 'a') : null;
    } catch (e) {
      throw new TstierError('TSTIER_E_BAD_CONFIG', `--log: cannot open ${file}: ${(e as Error).message.replace(/, open '.*'$/, '')}`);
    }
  }

  line(message: string): void {
    const text = `${goTimeLayout('2006/01/02 15:04:05', new Date())} ${message}\n`;
    if (this.fd !== null) {
      try {
        writeSync(this.fd, text);
        return;
      } catch {
        // fall through to stderr: a full disk must not stop the tunnel
      }
    }
    process.stderr.write(text);
  }

  /** Per-stream open/close messages, which --quiet suppresses. */
  stream(message: string): void {
    if (!this.quiet) this.line(message);
  }
}
