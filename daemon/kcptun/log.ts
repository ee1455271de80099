/**
 * kcptun's log: Go's standard logger format (`2006/01/02 15:04:05 message`), to stderr or to the
 * --log file (appended). One instance per process.
 */
import { appendFileSync } from 'node:fs';

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
  constructor(
    private readonly file: string,
    readonly quiet: boolean,
  ) {}

  line(message: string): void {
    const text = `${goTimeLayout('2006/01/02 15:04:05', new Date())} ${message}\n`;
    if (this.file) {
      try {
        appendFileSync(this.file, text);
        return;
      } catch {
        // fall through to stderr: a log that cannot be written must not stop the tunnel
      }
    }
    process.stderr.write(text);
  }

  /** Per-stream open/close messages, which --quiet suppresses. */
  stream(message: string): void {
    if (!this.quiet) this.line(message);
  }
}
