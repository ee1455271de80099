/** StatsRpc: the node's metrics as rows, or as Prometheus text. */
import type * as grpc from '@grpc/grpc-js';
import { renderPrometheus } from '../metrics/prometheus.js';
import type { ControlPlaneSource } from './source.js';
import { unary } from './unary.js';

export function statsService(source: ControlPlaneSource): grpc.UntypedServiceImplementation {
  const families = () => source.metrics?.() ?? [];
  return {
    GetStats: unary('GetStats', () => ({
      metrics: families().flatMap((f) => f.samples.map((s) => ({ name: f.name, type: f.type, labels: s.labels, value: s.value }))),
    })),
    GetPrometheusStats: unary('GetPrometheusStats', () => ({ text: renderPrometheus(families()) })),
  };
}
