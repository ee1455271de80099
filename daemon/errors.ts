import { createRequire } from 'node:module';

/**
 * Errors with stable codes. Callers and tests match `code`, never message text;
 * the CLI and the daemon's entry points map a code to a one-line message and an exit status.
 */
export type ErrorCode =
  | 'TSTIER_E_BAD_CONFIG' // a flag, config key or env override has a bad value; message names it
  | 'TSTIER_E_BAD_PACKET' // malformed input from the network; counted and dropped
  | 'TSTIER_E_AUTH' // wrong key or network secret
  | 'TSTIER_E_ADDR_IN_USE' // a listener's port is taken
  | 'TSTIER_E_LISTEN' // a listener cannot bind for another reason (address not here, privileged port)
  | 'TSTIER_E_ADDON' // a native addon or wasm module exists but cannot be loaded
  | 'TSTIER_E_TUN' // the TUN device failed
  | 'TSTIER_E_PROTOCOL' // the peer broke a protocol rule; the session ends
  | 'TSTIER_E_CLOSED' // operation on something already closed
  | 'TSTIER_E_RPC'; // the control plane could not answer

export class TstierError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'TstierError';
  }
}

/** A config error that names its key, as every config error must. */
export function badConfig(key: string, problem: string): TstierError {
  return new TstierError('TSTIER_E_BAD_CONFIG', `${key}: ${problem}`);
}

/**
 * Loads a native addon (`.node`). A missing, truncated or foreign file makes dlopen throw with a
 * multi-line message; this turns that into one TSTIER_E_ADDON line naming the file (and the
 * variable that pointed to it), so start-up fails with exit 2 instead of a stack.
 */
export function loadNativeAddon(path: string, what: string, envKey?: string): unknown {
  try {
    return createRequire(import.meta.url)(path);
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
    const from = envKey ? ` (from ${envKey})` : '';
    throw new TstierError('TSTIER_E_ADDON', `${what} ${path}${from}: cannot load: ${first}`, { cause: err });
  }
}
