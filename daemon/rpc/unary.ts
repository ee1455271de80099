/** Wraps a synchronous answer as a gRPC unary handler: a throwing source becomes INTERNAL, logged. */
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../log.js';

const log = createLogger('rpc');

export function unary<Res>(method: string, answer: () => Res): grpc.handleUnaryCall<unknown, Res> {
  return (_call, callback) => {
    let response: Res;
    try {
      response = answer();
    } catch (err) {
      log.warn('request failed', { method, err });
      callback({ code: grpc.status.INTERNAL, details: `${method}: ${err instanceof Error ? err.message : String(err)}` });
      return;
    }
    callback(null, response);
  };
}
