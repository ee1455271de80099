/**
 * Shared output for every subcommand: `-o table` (cli-table3) or `-o json`, which prints the
 * same rows as a JSON array, as EasyTier's `-o json` prints its table rows.
 */
import Table from 'cli-table3';

export type Cell = string | number | boolean;
export type Row = Record<string, Cell>;
export type OutputFormat = 'table' | 'json';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json'];

/** `list`: a row per item under a header. `record`: one item shown as field | value lines. */
export type Layout = 'list' | 'record';

export function render(rows: readonly Row[], columns: readonly string[], layout: Layout, format: OutputFormat): string {
  if (format === 'json') return JSON.stringify(rows, null, 2) + '\n';
  // No colours: output is often piped, and ANSI codes would break grep and tests alike.
  const style = { head: [], border: [] };
  if (layout === 'record') {
    const table = new Table({ style });
    for (const row of rows) {
      for (const column of columns) table.push({ [column]: terminalSafe(row[column]) });
    }
    return table.toString() + '\n';
  }
  const table = new Table({ head: [...columns], style });
  for (const row of rows) table.push(columns.map((column) => terminalSafe(row[column])));
  return table.toString() + '\n';
}

/**
 * C0 and C1 controls, DEL, and the bidi overrides/isolates: in a terminal they move the cursor,
 * recolour, retitle the window or reorder the text. Any string from the daemon may hold them — a
 * peer's hostname comes from a remote node — so a table shows them as escapes instead.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text for a terminal (a table cell, an error line): control characters escaped (\x1b, \u202e),
 * so what is shown is what was sent.
 */
export function terminalSafe(cell: Cell | undefined): string {
  const text = String(cell ?? '');
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** Local time as `YYYY-MM-DD HH:MM:SS`, as easytier-cli prints start_time. */
export function formatLocalTime(unixMs: number): string {
  const d = new Date(unixMs);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}
