/**
 * kcp-go's SNMP counters (docs/kcptun-wire.md §9), in kcptun 2021's CSV column order.
 * One `KcptunSnmp` is shared by every session of a process, as kcp-go's DefaultSnmp is.
 */

/** Column order of kcptun v20210922's --snmplog CSV and of its SIGUSR1 dump. */
export const SNMP_FIELDS = [
  'BytesSent',
  'BytesReceived',
  'MaxConn',
  'ActiveOpens',
  'PassiveOpens',
  'CurrEstab',
  'InErrs',
  'InCsumErrors',
  'KCPInErrors',
  'InPkts',
  'OutPkts',
  'InSegs',
  'OutSegs',
  'InBytes',
  'OutBytes',
  'RetransSegs',
  'FastRetransSegs',
  'EarlyRetransSegs',
  'LostSegs',
  'RepeatSegs',
  'FECParityShards',
  'FECErrs',
  'FECRecovered',
  'FECShortShards',
] as const;

export type SnmpField = (typeof SNMP_FIELDS)[number];
export type KcptunSnmp = Record<SnmpField, number>;

export function newSnmp(): KcptunSnmp {
  const s = {} as KcptunSnmp;
  for (const f of SNMP_FIELDS) s[f] = 0;
  return s;
}

/** `Unix,BytesSent,...`: the header row kcptun writes into an empty --snmplog file. */
export function snmpCsvHeader(): string {
  return ['Unix', ...SNMP_FIELDS].join(',');
}

export function snmpCsvRow(s: KcptunSnmp, unixSeconds: number): string {
  return [String(unixSeconds), ...SNMP_FIELDS.map((f) => String(s[f]))].join(',');
}

/** The SIGUSR1 dump, in Go's `%+v` shape: `&{BytesSent:1 BytesReceived:2 ...}`. */
export function snmpDump(s: KcptunSnmp): string {
  return `&{${SNMP_FIELDS.map((f) => `${f}:${s[f]}`).join(' ')}}`;
}
