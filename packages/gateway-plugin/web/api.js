// @ts-check
// The page's API client: every call carries the bearer token in a header, never in a URL.

/** @typedef {import('@vigil/core').SessionInfo} SessionInfo */
/** @typedef {import('@vigil/core').ProcessInfo} ProcessInfo */

/** Thrown when the server refuses the token; the page asks for another. */
export class Unauthorized extends Error {}

/** The token the page uses, kept for this tab only. */
export const auth = { token: '' };

/**
 * Calls the API and returns its JSON body (null for 204). Throws `Unauthorized` on 401 and an Error
 * with the server's message otherwise.
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<any>}
 */
export async function api(path, init = {}) {
  const response = await fetch(path, {
    ...init,
    headers: { authorization: `Bearer ${auth.token}`, 'content-type': 'application/json', ...init.headers },
  });
  if (response.status === 401) throw new Unauthorized('That token was refused.');
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
  return body;
}

/** @returns {Promise<SessionInfo[]>} */
export async function listSessions() {
  return (await api('/v1/sessions')).sessions;
}

/**
 * @param {string} processId
 * @returns {Promise<{ process: ProcessInfo, tail: string }>}
 */
export function pollProcess(processId) {
  return api(`/v1/processes/${encodeURIComponent(processId)}/poll`);
}

/** @param {string} processId */
export function killProcess(processId) {
  return api(`/v1/processes/${encodeURIComponent(processId)}/kill`, { method: 'POST', body: '{}' });
}

/**
 * @param {string} sessionId
 * @param {string} approvalId
 * @param {'approve' | 'deny'} decision
 */
export function decide(sessionId, approvalId, decision) {
  const path = `/v1/sessions/${encodeURIComponent(sessionId)}/approvals/${encodeURIComponent(approvalId)}`;
  return api(path, { method: 'POST', body: JSON.stringify({ decision }) });
}
