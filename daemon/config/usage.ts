/** easytier-core --help, generated from the option table. */
import { OPTIONS } from './options.js';

export function usage(): string {
  const rows = OPTIONS.map((def) => {
    const names = `${def.short === undefined ? '    ' : `-${def.short}, `}--${def.long}${def.arg === undefined ? '' : ` <${def.arg}>`}`;
    return [names, `${def.help} [${def.env}]`] as const;
  });
  const width = Math.max(...rows.map(([names]) => names.length)) + 2;
  return [
    'Usage: easytier-core [options]',
    '',
    'Runs one tstier node: a member of an EasyTier virtual network with a KCP/QUIC TCP proxy.',
    'Settings come from flags, then ET_* environment variables, then the -c file, then defaults.',
    '',
    'Options:',
    ...rows.map(([names, help]) => `  ${names.padEnd(width)}${help}`),
    `  ${'-h, --help'.padEnd(width)}print this help`,
    '',
  ].join('\n');
}
