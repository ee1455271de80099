/**
 * `easytier-cli stats [show] | stats prometheus` (EasyTier's subcommands): the node's counters as
 * rows (one per sample, labels as k=v), or as Prometheus text, printed as is.
 */
import type { Subcommand } from './subcommand.js';

interface MetricMessage {
  name: string;
  type: string;
  labels: Record<string, string>;
  value: number;
}

export const statsCommand: Subcommand = {
  name: 'stats',
  summary: 'show the node\'s counters; "stats prometheus" prints them as Prometheus text',
  service: 'StatsRpc',
  method: 'GetStats',
  layout: 'list',
  columns: ['name', 'labels', 'value'],
  request(args) {
    if (args.length === 0 || (args.length === 1 && args[0] === 'show')) return { method: 'GetStats', request: {} };
    if (args.length === 1 && args[0] === 'prometheus') {
      return { method: 'GetPrometheusStats', request: {}, raw: (response) => (response as { text: string }).text };
    }
    throw new Error(`stats: unknown action "${args.join(' ')}" (show or prometheus)`);
  },
  toRows(response) {
    return (response as { metrics: MetricMessage[] }).metrics.map((m) => ({
      name: m.name,
      labels: Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(','),
      value: m.value,
    }));
  },
};
