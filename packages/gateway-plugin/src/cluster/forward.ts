import { toVigilError, VigilError } from '@vigil/core';
import type { ForwardedReply, ForwardRequest } from '../http/cluster-routing.js';
import { FORWARDED_BY_HEADER } from '../http/cluster-routing.js';
import type { SessionOwner } from './remote-sessions.js';

/** Why the owner of `sessionId` cannot run a request: `ERR_SESSION_OWNED` naming it and the reason. */
export function ownedElsewhere(sessionId: string, owner: SessionOwner, reason: string): VigilError {
  return new VigilError(
    'ERR_SESSION_OWNED',
    `Session ${sessionId} is owned by instance ${owner.instanceId}${owner.url ? ` (${owner.url})` : ''}: ${reason}`,
    { details: { sessionId, owner: owner.instanceId, url: owner.url ?? null, reason } },
  );
}

/**
 * Sends `request` to the instance owning `sessionId` with this cluster's bearer token, and returns
 * its answer as is. A request that was already forwarded is not forwarded again (no loops).
 */
export async function forwardTo(
  sessionId: string,
  owner: SessionOwner,
  request: ForwardRequest,
  self: { readonly instanceId: string; readonly token: string },
): Promise<ForwardedReply> {
  if (request.forwardedBy !== undefined) {
    throw ownedElsewhere(
      sessionId,
      owner,
      `instance ${request.forwardedBy} forwarded the request here, but this instance (${self.instanceId}) does not serve the session`,
    );
  }
  if (owner.closed) {
    throw new VigilError('ERR_SESSION_CLOSED', `session ${sessionId} is closed`, { details: { sessionId } });
  }
  if (owner.instanceId === self.instanceId) {
    throw ownedElsewhere(sessionId, owner, 'this instance holds its lease but has not opened it (yet)');
  }
  if (!owner.alive) {
    throw ownedElsewhere(
      sessionId,
      owner,
      'that instance is gone (its lease expired); another instance takes the session over shortly',
    );
  }
  if (owner.url === undefined) {
    throw ownedElsewhere(
      sessionId,
      owner,
      'that instance registered no URL to reach it by (--advertise-url)',
    );
  }
  let response: Response;
  try {
    response = await fetch(new URL(request.target, owner.url), {
      method: request.method,
      headers: {
        authorization: `Bearer ${self.token}`,
        [FORWARDED_BY_HEADER]: self.instanceId,
        ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
      signal: request.signal,
    });
  } catch (cause) {
    if (request.signal.aborted) throw toVigilError(request.signal.reason, 'ERR_ABORTED');
    const why = (cause as { cause?: { code?: string } }).cause?.code ?? String(cause);
    const error = ownedElsewhere(sessionId, owner, `it cannot be reached (${why})`);
    throw Object.assign(error, { cause });
  }
  const text = await response.text();
  if (text === '') return { status: response.status };
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch (cause) {
    const error = ownedElsewhere(
      sessionId,
      owner,
      `its answer (${response.status}) is not JSON: is ${owner.url} a vigil?`,
    );
    throw Object.assign(error, { cause });
  }
}
