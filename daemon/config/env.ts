/** ET_* environment overrides → a Layer. Unset or empty variables set nothing. */
import { applyText, OPTIONS, type Layer } from './options.js';

export function readEnv(env: NodeJS.ProcessEnv): Layer {
  const layer: Layer = {};
  for (const def of OPTIONS) {
    const raw = env[def.env];
    if (raw !== undefined && raw !== '') applyText(layer, def, raw, def.env);
  }
  return layer;
}
