// One HTTP client for the tests of the API: the bearer token in a header, JSON in and out.

/** What a call answered. */
export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are inspected loosely in tests
  readonly body: any;
}

export interface CallInit {
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Sent as is (not JSON-encoded). */
  readonly raw?: string;
  /** Another token, or null for none. Default: the client's. */
  readonly token?: string | null;
  readonly headers?: Record<string, string>;
  readonly signal?: AbortSignal;
}

export type Call = (method: string, path: string, init?: CallInit) => Promise<Answer>;

/** A client of the API at `base` that sends `token`. */
export function apiClient(base: string, token: string): Call {
  return async (method, path, init = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    const auth = init.token === undefined ? token : init.token;
    if (auth !== null) headers.authorization = `Bearer ${auth}`;
    let body: string | undefined = init.raw;
    if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      headers['content-type'] = 'application/json';
    }
    const res = await fetch(base + path, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      ...(init.signal ? { signal: init.signal } : {}),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
  };
}
