import { VigilError } from '@vigil/core';
import { displayUrl } from '@vigil/core/redis';

/** A Redis command failed (unreachable, timed out, refused): `ERR_STORE_UNAVAILABLE` naming the URL. */
export function storeUnavailable(url: string, cause: unknown): VigilError {
  if (cause instanceof VigilError) return cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  const shown = displayUrl(url);
  return new VigilError('ERR_STORE_UNAVAILABLE', `The Redis store at ${shown} is unavailable: ${reason}`, {
    cause,
    details: { url: shown },
  });
}

/** Runs one Redis operation, turning its failure into `ERR_STORE_UNAVAILABLE`. */
export async function guarded<T>(url: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw storeUnavailable(url, error);
  }
}

/** Runs a transaction or pipeline; any command's failure is `ERR_STORE_UNAVAILABLE`. Its replies, in order. */
export function execAll(
  url: string,
  batch: { exec(): Promise<[Error | null, unknown][] | null> },
): Promise<unknown[]> {
  return guarded(url, async () =>
    ((await batch.exec()) ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    }),
  );
}
