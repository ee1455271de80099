/** PortForwardRpc: list, add and remove port forwards at run time; every answer is the new list. */
import * as grpc from '@grpc/grpc-js';
import { TstierError } from '../errors.js';
import type { ControlPlaneSource, PortForwardControl, PortForwardView } from './source.js';

function listMessage(forwards: PortForwardView[]): object {
  return {
    forwards: forwards.map((f) => ({ spec: f.spec, proto: f.proto, bind_addr: f.bind, dst_addr: f.dst, active: f.active })),
  };
}

type Handler = grpc.handleUnaryCall<{ spec?: string }, object>;

/** A call against the node's port forwards; TstierErrors become the status their code means. */
function call(source: ControlPlaneSource, act: (pf: PortForwardControl, spec: string) => Promise<void> | void): Handler {
  return (req, callback) => {
    const pf = source.portForwards?.();
    if (!pf) return callback({ code: grpc.status.FAILED_PRECONDITION, details: 'this node has no port forwarding' });
    Promise.resolve()
      .then(() => act(pf, req.request.spec ?? ''))
      .then(() => callback(null, listMessage(pf.list())), (err: unknown) => {
        const code = !(err instanceof TstierError) ? grpc.status.INTERNAL
          : err.code === 'TSTIER_E_ADDR_IN_USE' ? grpc.status.ALREADY_EXISTS
            : err.code === 'TSTIER_E_CLOSED' ? grpc.status.NOT_FOUND : grpc.status.INVALID_ARGUMENT;
        callback({ code, details: err instanceof Error ? err.message : String(err) });
      });
  };
}

export function portForwardService(source: ControlPlaneSource): grpc.UntypedServiceImplementation {
  return {
    ListPortForward: call(source, () => undefined),
    AddPortForward: call(source, (pf, spec) => pf.add(spec)),
    RemovePortForward: call(source, (pf, spec) => {
      if (!pf.remove(spec)) throw new TstierError('TSTIER_E_CLOSED', `no port forward ${spec}`);
    }),
  };
}
