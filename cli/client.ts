/** One unary call to easytier-core's gRPC portal; failures become one-line TstierErrors. */
import * as grpc from '@grpc/grpc-js';
import { TstierError } from '../daemon/errors.js';
import { loadApi, type ServiceName } from '../daemon/rpc/api.js';

// The daemon answers from memory; a call this slow means it is wedged or the port is not ours.
const CALL_DEADLINE_MS = 5000;

export async function callRpc(portal: string, service: ServiceName, method: string, request: object = {}): Promise<unknown> {
  const Client = loadApi().services[service];
  const client = new Client(portal, grpc.credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => {
      const call = client[method] as (req: object, opts: grpc.CallOptions, cb: grpc.requestCallback<unknown>) => void;
      call.call(client, request, { deadline: Date.now() + CALL_DEADLINE_MS }, (err, response) => {
        if (err) reject(callError(portal, service, err));
        else resolve(response);
      });
    });
  } finally {
    client.close();
  }
}

function callError(portal: string, service: ServiceName, err: grpc.ServiceError): TstierError {
  switch (err.code) {
    case grpc.status.UNAVAILABLE: {
      const reason = /\b(E[A-Z]{3,})\b/.exec(err.details)?.[1] ?? err.details;
      return new TstierError('TSTIER_E_RPC', `cannot reach easytier-core at ${portal} (${reason}); is it running, and is -p right?`, { cause: err });
    }
    case grpc.status.DEADLINE_EXCEEDED:
      return new TstierError('TSTIER_E_RPC', `easytier-core at ${portal} did not answer within ${CALL_DEADLINE_MS / 1000} s`, { cause: err });
    case grpc.status.UNIMPLEMENTED:
      return new TstierError('TSTIER_E_RPC', `${portal} does not serve ${service}; is it a tstier easytier-core?`, { cause: err });
    default:
      return new TstierError('TSTIER_E_RPC', `${service} failed: ${err.details}`, { cause: err });
  }
}
