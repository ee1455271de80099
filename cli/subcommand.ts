/** What each subcommand file declares: which RPC to call and how its answer becomes rows. */
import type { ServiceName } from '../daemon/rpc/api.js';
import type { Layout, Row } from './output.js';

export interface Subcommand {
  name: string;
  summary: string;
  service: ServiceName;
  method: string;
  layout: Layout;
  columns: readonly string[];
  /**
   * For a subcommand that takes arguments (`port-forward add SPEC`): which method to call with what.
   * `raw`: the answer is printed as this text instead of rows (`stats prometheus`).
   * Throws an Error whose message is the usage problem.
   */
  request?(args: readonly string[]): { method: string; request: object; raw?: (response: unknown) => string };
  /** `--summary`: other columns and rows from the same response (`proxy --summary`). */
  summaryView?: { columns: readonly string[]; toRows(response: unknown): Row[] };
  /** The decoded response (snake_case fields, enums as names) → rows keyed by `columns`. */
  toRows(response: unknown): Row[];
}
