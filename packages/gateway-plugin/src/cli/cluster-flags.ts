import { VigilError } from '@vigil/core';
import type { GatewayClusterOptions } from './gateway.js';

/** `vigil serve`'s cluster flags as given (`--redis` or `VIGIL_REDIS_URL`, `--instance-id`, `--advertise-url`). */
export interface ClusterFlags {
  readonly redis?: string | undefined;
  readonly instanceId?: string | undefined;
  readonly advertiseUrl?: string | undefined;
}

/** As `store.instanceId`. */
const INSTANCE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The cluster `vigil serve` joins, checked at start: a `redis://` or `rediss://` URL (`--redis` wins
 * over `VIGIL_REDIS_URL`; an empty variable counts as unset), an instance id of `[A-Za-z0-9._-]`,
 * an `http(s)://` advertise URL. Each error names the flag or the variable. Undefined without Redis.
 */
export function chooseCluster(
  flags: ClusterFlags,
  env: string | undefined,
): GatewayClusterOptions | undefined {
  const fail = (field: string, problem: string): VigilError =>
    new VigilError('ERR_INVALID_CONFIG', `${field}: ${problem}`, { details: { field } });
  const [given, field] =
    flags.redis !== undefined ? [flags.redis, '--redis'] : [env === '' ? undefined : env, 'VIGIL_REDIS_URL'];
  if (given === undefined) {
    if (flags.instanceId !== undefined) throw fail('--instance-id', 'needs --redis (or VIGIL_REDIS_URL)');
    if (flags.advertiseUrl !== undefined) throw fail('--advertise-url', 'needs --redis (or VIGIL_REDIS_URL)');
    return undefined;
  }
  if (!hasProtocol(given, ['redis:', 'rediss:'])) {
    throw fail(field, `must be a redis:// or rediss:// URL, got ${JSON.stringify(given.slice(0, 200))}`);
  }
  if (flags.instanceId !== undefined && !INSTANCE_ID.test(flags.instanceId)) {
    throw fail(
      '--instance-id',
      `must be 1-64 letters, digits, dots, dashes or underscores, got ${JSON.stringify(flags.instanceId.slice(0, 140))}`,
    );
  }
  if (flags.advertiseUrl !== undefined && !hasProtocol(flags.advertiseUrl, ['http:', 'https:'])) {
    throw fail(
      '--advertise-url',
      `must be an http:// or https:// URL, got ${JSON.stringify(flags.advertiseUrl.slice(0, 200))}`,
    );
  }
  return {
    url: given,
    ...(flags.instanceId === undefined ? {} : { instanceId: flags.instanceId }),
    ...(flags.advertiseUrl === undefined ? {} : { advertiseUrl: flags.advertiseUrl.replace(/\/+$/, '') }),
  };
}

function hasProtocol(text: string, protocols: readonly string[]): boolean {
  try {
    const url = new URL(text);
    return protocols.includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}
