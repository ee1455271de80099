/** Binding sockets with errors that name the key at fault. */
import { TstierError } from '../errors.js';

/** Runs a listen/bind and turns its error into a TstierError naming listen_port. */
export function listen(
  start: (cb: () => void) => void,
  emitter: { once(ev: 'error', l: (e: NodeJS.ErrnoException) => void): unknown; off(ev: 'error', l: (e: NodeJS.ErrnoException) => void): unknown },
  host: string,
  port: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(new TstierError(e.code === 'EADDRINUSE' ? 'TSTIER_E_ADDR_IN_USE' : 'TSTIER_E_BAD_CONFIG',
        `listen_port: cannot listen on ${host}:${port}: ${e.message}`));
    };
    emitter.once('error', onError);
    start(() => {
      emitter.off('error', onError);
      resolve();
    });
  });
}
