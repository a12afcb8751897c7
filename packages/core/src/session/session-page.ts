import type { SessionInfo } from './session-info.js';

/** `sessions.page()` options. */
export interface SessionPageOptions {
  /** Sessions whose id sorts after this one (exclusive): the `next` of the previous page. Default: from the first. */
  readonly after?: string;
  /** Sessions per page, 1–1000. Default 100. */
  readonly limit?: number;
}

/** One page of sessions, in `sessionId` order (UTF-16 code units, like `<`). */
export interface SessionPage {
  readonly sessions: SessionInfo[];
  /** Pass as `after` for the next page; `null` when this page is the last. */
  readonly next: string | null;
  /** Sessions listed in all (open, and closed ones still retained). */
  readonly total: number;
}

export const SESSION_PAGE_DEFAULT_LIMIT = 100;
export const SESSION_PAGE_MAX_LIMIT = 1000;

/**
 * The `limit` smallest ids greater than `after`, sorted, and whether more follow. Keeps only a
 * sorted window of `limit` ids instead of sorting them all: ids opened in order (the usual case)
 * cost one comparison each.
 */
export function idsAfter(
  ids: Iterable<string>,
  after: string | undefined,
  limit: number,
): { readonly ids: string[]; readonly hasMore: boolean } {
  const window: string[] = [];
  let candidates = 0;
  for (const id of ids) {
    if (after !== undefined && id <= after) continue;
    candidates++;
    if (window.length === limit && id >= (window[limit - 1] as string)) continue;
    window.splice(insertionPoint(window, id), 0, id);
    if (window.length > limit) window.pop();
  }
  return { ids: window, hasMore: candidates > limit };
}

function insertionPoint(sorted: readonly string[], id: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((sorted[mid] as string) < id) low = mid + 1;
    else high = mid;
  }
  return low;
}
