/** --snmplog: appends one CSV row of the process-wide counters every --snmpperiod seconds. */
import { appendFileSync, statSync } from 'node:fs';
import { snmpCsvHeader, snmpCsvRow, type KcptunSnmp } from '../transport/session/snmp.js';
import { goTimeLayout, type KcptunLog } from './log.js';

export function writeSnmpRow(pathLayout: string, snmp: KcptunSnmp, now: Date): void {
  const path = goTimeLayout(pathLayout, now);
  let empty = true;
  try {
    empty = statSync(path).size === 0;
  } catch {
    // missing: written with a header below
  }
  const row = snmpCsvRow(snmp, Math.floor(now.getTime() / 1000));
  appendFileSync(path, (empty ? snmpCsvHeader() + '\n' : '') + row + '\n');
}

/** Starts the periodic writer; returns a function that stops it. */
export function startSnmpLog(pathLayout: string, periodSeconds: number, snmp: KcptunSnmp, log: KcptunLog): () => void {
  if (!pathLayout) return () => undefined;
  const timer = setInterval(() => {
    try {
      writeSnmpRow(pathLayout, snmp, new Date());
    } catch (e) {
      log.line(`snmplog: ${(e as Error).message}`);
    }
  }, periodSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
