/**
 * A tiny leveled logger: one line per event on stderr,
 * `<ISO time> <LEVEL> [<scope>] <message> key=value ...`.
 *
 * The level is process-wide: the env var TSTIER_LOG_LEVEL sets it at start-up, and the daemon
 * calls setLogLevel() once its config (--log-level) is parsed. Messages below the level cost one
 * comparison; callers on hot paths can test `log.enabled('debug')` before building a message.
 */

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';

export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'trace'];

/** Extra context for one event; values are rendered as key=value. */
export type LogFields = Record<string, unknown>;

export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  trace(message: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };
const LABEL: Record<LogLevel, string> = { error: 'ERROR', warn: 'WARN ', info: 'INFO ', debug: 'DEBUG', trace: 'TRACE' };

export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(RANK, value);
}

let threshold = initialThreshold();

function initialThreshold(): number {
  const fromEnv = process.env['TSTIER_LOG_LEVEL']?.toLowerCase();
  return fromEnv !== undefined && isLogLevel(fromEnv) ? RANK[fromEnv] : RANK.info;
}

/** Sets the process-wide level; events less severe than it are dropped. */
export function setLogLevel(level: LogLevel): void {
  threshold = RANK[level];
}

/** Where lines go; tests may swap it to capture output. */
let sink: (line: string) => void = (line) => process.stderr.write(line);

export function setLogSink(write: (line: string) => void): void {
  sink = write;
}

export function createLogger(scope: string): Logger {
  const emit = (level: LogLevel, message: string, fields?: LogFields): void => {
    if (RANK[level] > threshold) return;
    let line = `${new Date().toISOString()} ${LABEL[level]} [${scope}] ${oneLine(message)}`;
    if (fields !== undefined) {
      for (const key of Object.keys(fields)) line += ` ${key}=${renderValue(fields[key])}`;
    }
    sink(line + '\n');
  };
  return {
    error: (message, fields) => emit('error', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    info: (message, fields) => emit('info', message, fields),
    debug: (message, fields) => emit('debug', message, fields),
    trace: (message, fields) => emit('trace', message, fields),
    enabled: (level) => RANK[level] <= threshold,
  };
}

// A multi-line message would break "one line per event" for anyone grepping the log.
function oneLine(text: string): string {
  return text.includes('\n') ? text.replace(/\r?\n/g, '\\n') : text;
}

function renderValue(value: unknown): string {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return JSON.stringify(typeof code === 'string' ? `${code}: ${value.message}` : value.message);
  }
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === 'object' && value !== null) return oneLine(safeJson(value));
  return String(value);
}

function safeJson(value: object): string {
  try {
    return JSON.stringify(value);
  } catch {
    return String(value); // cyclic or BigInt: still one line, never a throw from a log call
  }
}
