/**
 * The numeric options of a wasm crate, checked the same way for both: each an integer in its range,
 * or a config error naming the key (e.g. "smoltcp.mtu: 100 is not an integer in [576, 65535]").
 */
import { badConfig } from '../errors.js';

export type IntegerLimits = Readonly<Record<string, readonly [number, number]>>;

export function checkIntegerOptions(prefix: string, values: Readonly<Record<string, unknown>>, limits: IntegerLimits): void {
  for (const [key, [min, max]] of Object.entries(limits)) {
    const v = values[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw badConfig(`${prefix}.${key}`, `${String(v)} is not an integer in [${min}, ${max}]`);
    }
  }
}

/** The options object without its undefined entries, to spread over defaults. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
