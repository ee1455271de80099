/**
 * easytier-core's command line → a Layer. Long flags take `--name value` or `--name=value`;
 * short ones `-x value` or `-xvalue`. Boolean flags stand alone or take an explicit
 * true/false. Anything unknown is an error that names it.
 */
import { badConfig } from '../errors.js';
import { applyText, FLAG_ALIASES, OPTIONS, type Layer, type OptionDef } from './options.js';

export type ArgvResult = { help: true } | { help: false; layer: Layer };

const byLong = new Map(OPTIONS.map((def) => [def.long, def]));
const byShort = new Map(OPTIONS.flatMap((def) => (def.short === undefined ? [] : [[def.short, def] as const])));

export function parseArgv(args: readonly string[]): ArgvResult {
  const layer: Layer = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '-h' || arg === '--help') return { help: true };
    const flag = splitFlag(arg);
    const def = flag.long ? byLong.get(FLAG_ALIASES[flag.key] ?? flag.key) : byShort.get(flag.key);
    if (def === undefined) {
      throw badConfig(flag.shown, arg.startsWith('-') ? 'unknown flag (see --help)' : 'unexpected argument (see --help)');
    }
    let value = flag.inline;
    if (def.kind === 'bool') {
      const next = args[i + 1];
      if (value === undefined && (next === 'true' || next === 'false')) value = args[++i];
      applyText(layer, def, value ?? 'true', flag.shown);
      continue;
    }
    if (value === undefined) value = takeValue(args, ++i, flag.shown, def);
    applyText(layer, def, value, flag.shown);
  }
  return { help: false, layer };
}

interface SplitFlag { long: boolean; key: string; shown: string; inline: string | undefined }

function splitFlag(arg: string): SplitFlag {
  if (arg.startsWith('--') && arg.length > 2) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    return { long: true, key, shown: `--${key}`, inline: eq < 0 ? undefined : arg.slice(eq + 1) };
  }
  if (arg.startsWith('-') && arg.length > 1 && arg !== '--') {
    const key = arg.slice(1, 2);
    const rest = arg.slice(2);
    return { long: false, key, shown: `-${key}`, inline: rest === '' ? undefined : rest.replace(/^=/, '') };
  }
  return { long: false, key: '', shown: arg, inline: undefined };
}

function takeValue(args: readonly string[], index: number, shown: string, def: OptionDef): string {
  const value = args[index];
  if (value === undefined) throw badConfig(shown, `needs a value (${def.arg ?? 'VALUE'})`);
  return value;
}
