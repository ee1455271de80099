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
  /** The decoded response (snake_case fields, enums as names) → rows keyed by `columns`. */
  toRows(response: unknown): Row[];
}
