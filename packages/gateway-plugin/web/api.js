// @ts-check
// The page's API client: every call carries the bearer token in a header, never in a URL.

/** @typedef {import('@vigil/core').SessionInfo} SessionInfo */
/** @typedef {import('@vigil/core').ProcessInfo} ProcessInfo */

/** Thrown when the server refuses the token; the page asks for another. */
export class Unauthorized extends Error {}

/** An error answer of the API: its status and `error.code`. */
export class ApiError extends Error {
  /** @param {number} status @param {string | undefined} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

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
  if (!response.ok) {
    throw new ApiError(response.status, body?.error?.code, body?.error?.message ?? `HTTP ${response.status}`);
  }
  return body;
}

/**
 * A page of sessions in id order, after `after`.
 * @param {string | undefined} after @param {number} limit
 * @returns {Promise<import('@vigil/core').SessionPage>}
 */
export function listSessions(after, limit) {
  const query = new URLSearchParams({ limit: String(limit), ...(after === undefined ? {} : { after }) });
  return api(`/v1/sessions?${query}`);
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
 * @param {import('@vigil/core').ApprovalDecision} decision
 */
export function decide(sessionId, approvalId, decision) {
  const path = `/v1/sessions/${encodeURIComponent(sessionId)}/approvals/${encodeURIComponent(approvalId)}`;
  return api(path, { method: 'POST', body: JSON.stringify({ decision }) });
}

/**
 * Answers every approval the card counted: those requested up to `version`, not any that came later.
 * @param {string} sessionId
 * @param {number} version
 * @param {'approve' | 'deny'} decision
 */
export function decideAll(sessionId, version, decision) {
  const path = `/v1/sessions/${encodeURIComponent(sessionId)}/approvals/all`;
  return api(path, { method: 'POST', body: JSON.stringify({ decision, version }) });
}
