import type { MessagePort } from 'node:worker_threads';
import type { RegistryPort } from '@vigil/core/thread';
import type { Remote } from 'comlink';

/**
 * Comlink calls in flight when the other end goes away never settle. This wraps the remote
 * registry so every call also rejects when the port closes, and the poller unwinds.
 */
export function guardRegistry(remote: Remote<RegistryPort>, port: MessagePort): RegistryPort {
  let closed = false;
  const closers = new Set<(error: Error) => void>();
  port.once('close', () => {
    closed = true;
    const error = new Error('registry port closed');
    for (const reject of closers) reject(error);
    closers.clear();
  });
  const guard = <T>(call: () => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new Error('registry port closed'));
    return new Promise<T>((resolve, reject) => {
      closers.add(reject);
      call().then(
        (value) => {
          closers.delete(reject);
          resolve(value);
        },
        (error: unknown) => {
          closers.delete(reject);
          reject(error);
        },
      );
    });
  };
  return {
    hello: (info) => guard(() => remote.hello(info)),
    pull: (request) => guard(() => remote.pull(request)),
    commit: (report) => guard(() => remote.commit(report)),
  };
}
