/**
 * Loads proto/*.proto at run time (no generated code) for both the server and easytier-cli.
 * Options: 64-bit integers as JS numbers (byte counters stay far below 2^53), enums as names,
 * absent fields filled with defaults so the CLI never meets undefined.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../log.js';

// Compiled to dist/daemon/rpc/api.js; proto/ sits at the repository root.
const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));
const PROTO_FILES = ['node.proto', 'peer.proto', 'route.proto', 'proxy.proto', 'port_forward.proto', 'stats.proto'];

export const API_PACKAGE = 'tstier.api';

export type ServiceName = 'NodeInfoRpc' | 'PeerRpc' | 'RouteRpc' | 'TcpProxyRpc' | 'PortForwardRpc' | 'StatsRpc';
export const SERVICE_NAMES: readonly ServiceName[] = ['NodeInfoRpc', 'PeerRpc', 'RouteRpc', 'TcpProxyRpc', 'PortForwardRpc', 'StatsRpc'];

export interface Api {
  packageDefinition: protoLoader.PackageDefinition;
  services: Record<ServiceName, grpc.ServiceClientConstructor>;
}

let cached: Api | undefined;

// grpc-js prints its own errors to stderr; the daemon and the CLI already report every failure
// in one line, so its copies go to our log at debug level.
const grpcLog = createLogger('grpc');
grpc.setLogger({ error: (...args: unknown[]) => grpcLog.debug(args.join(' ')) } as Partial<Console>);

export function loadApi(): Api {
  if (cached !== undefined) return cached;
  const packageDefinition = protoLoader.loadSync(PROTO_FILES, {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    arrays: true,
  });
  const root = grpc.loadPackageDefinition(packageDefinition);
  const pkg = API_PACKAGE.split('.').reduce<grpc.GrpcObject>((node, part) => node[part] as grpc.GrpcObject, root);
  const services = Object.fromEntries(SERVICE_NAMES.map((name) => [name, pkg[name] as grpc.ServiceClientConstructor]));
  cached = { packageDefinition, services: services as Record<ServiceName, grpc.ServiceClientConstructor> };
  return cached;
}
