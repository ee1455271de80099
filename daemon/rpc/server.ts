/**
 * The gRPC control plane: NodeInfoRpc, PeerRpc, RouteRpc and TcpProxyRpc read from a
 * ControlPlaneSource, plus server reflection so grpcurl can list and call them.
 */
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { TstierError } from '../errors.js';
import { loadApi, type ServiceName } from './api.js';
import { nodeInfoService } from './node-service.js';
import { peerService } from './peer-service.js';
import { portForwardService } from './port-forward-service.js';
import { proxyService } from './proxy-service.js';
import { routeService } from './route-service.js';
import { statsService } from './stats-service.js';
import type { ControlPlaneSource } from './source.js';
import { whitelistCheck } from './whitelist.js';

export interface RpcServer {
  /** "ip:port" actually bound (the real port when the portal asked for port 0). */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

// In-flight calls are tiny reads; a graceful shutdown that takes longer is stuck on a client.
const SHUTDOWN_GRACE_MS = 2000;

/**
 * Binds `portal` ("ip:port"). A taken port is TSTIER_E_ADDR_IN_USE naming rpc_portal. With a
 * `whitelist` (CIDRs), calls from elsewhere get PERMISSION_DENIED.
 */
export async function startRpcServer(source: ControlPlaneSource, portal: string, whitelist?: readonly string[]): Promise<RpcServer> {
  const api = loadApi();
  const server = new grpc.Server();
  const implementations: Record<ServiceName, grpc.UntypedServiceImplementation> = {
    NodeInfoRpc: nodeInfoService(source),
    PeerRpc: peerService(source),
    RouteRpc: routeService(source),
    TcpProxyRpc: proxyService(source),
    PortForwardRpc: portForwardService(source),
    StatsRpc: statsService(source),
  };
  const allowed = whitelistCheck(whitelist);
  for (const [name, impl] of Object.entries(implementations)) {
    server.addService(api.services[name as ServiceName].service, allowed ? guarded(impl, allowed) : impl);
  }
  new ReflectionService(api.packageDefinition).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(portal, grpc.ServerCredentials.createInsecure(), (err, boundPort) => {
      if (err) reject(bindError(portal, err));
      else resolve(boundPort);
    });
  });
  const host = portal.slice(0, portal.lastIndexOf(':'));
  return { address: `${host}:${port}`, port, close: () => shutdown(server) };
}

/** Every unary handler of `impl`, refusing callers `allowed` rejects. */
function guarded(impl: grpc.UntypedServiceImplementation, allowed: (peer: string) => boolean): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(impl)) {
    const h = handler as grpc.handleUnaryCall<unknown, unknown>;
    out[method] = ((call, callback) => {
      if (allowed(call.getPeer())) return h(call, callback);
      callback({ code: grpc.status.PERMISSION_DENIED, details: `${call.getPeer()} is not in --rpc-portal-whitelist` });
    }) as grpc.handleUnaryCall<unknown, unknown>;
  }
  return out;
}

function bindError(portal: string, err: Error): TstierError {
  if (/EADDRINUSE/.test(err.message)) {
    return new TstierError('TSTIER_E_ADDR_IN_USE', `rpc_portal: ${portal} is already in use (another easytier-core? pick one with -r)`, { cause: err });
  }
  const reason = /E[A-Z]+/.exec(err.message)?.[0] ?? err.message;
  return new TstierError('TSTIER_E_RPC', `rpc_portal: cannot listen on ${portal}: ${reason}`, { cause: err });
}

function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
    force.unref();
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
