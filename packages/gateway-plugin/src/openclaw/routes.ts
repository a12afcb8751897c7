import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VigilError } from '@vigil/core';

/** Where OpenClaw routes system events for one vigil session. */
export interface Route {
  readonly sessionKey: string | undefined;
  readonly agentId: string | undefined;
}

/** The routes file in vigil's `stateDir`. */
const ROUTES_FILE = 'openclaw-routes.json';

/**
 * vigil session id → OpenClaw route. With a state directory the routes are kept in a file next to
 * vigil's journal, so that after a gateway restart a restored session is delivered to at once,
 * before its OpenClaw session calls a hook or a tool again.
 */
export class Routes {
  readonly #routes = new Map<string, Route>();
  #file: string | undefined;
  #onError: (error: unknown) => void = () => undefined;

  get(sessionId: string): Route | undefined {
    return this.#routes.get(sessionId);
  }

  /** Every session id with a route. */
  ids(): string[] {
    return [...this.#routes.keys()];
  }

  /**
   * Merges `route` into the session's route (a field it leaves out stays as it was). The entry is a
   * new object each time, so that `forget` with an older one leaves it; it is saved only if it changed.
   */
  remember(sessionId: string, route: Route): void {
    const known = this.#routes.get(sessionId);
    const merged = {
      sessionKey: route.sessionKey ?? known?.sessionKey,
      agentId: route.agentId ?? known?.agentId,
    };
    this.#routes.set(sessionId, merged);
    if (known?.sessionKey !== merged.sessionKey || known?.agentId !== merged.agentId) this.#save();
  }

  /** Forgets the session's route if it is still `route` (a newer one stays). */
  forget(sessionId: string, route: Route | undefined): void {
    if (this.#routes.get(sessionId) !== route || !this.#routes.delete(sessionId)) return;
    this.#save();
  }

  /**
   * Keeps the routes in `stateDir` from now on: reads the ones a previous gateway saved (those
   * learned since take precedence) and writes the merged set back. A later write that fails goes to
   * `onError` (the routes stay in memory and the next change writes them all).
   */
  persistIn(stateDir: string, onError: (error: unknown) => void): void {
    this.#onError = onError;
    const file = join(stateDir, ROUTES_FILE);
    if (this.#file === file) return;
    // Before vigil's journal creates it, with the same mode.
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    for (const [sessionId, route] of Object.entries(read(file))) {
      if (!this.#routes.has(sessionId)) this.#routes.set(sessionId, route);
    }
    write(file, this.#routes);
    this.#file = file;
  }

  #save(): void {
    if (this.#file === undefined) return;
    try {
      write(this.#file, this.#routes);
    } catch (error) {
      this.#onError(error);
    }
  }
}

/** Written aside and renamed: a crash leaves the old file or the new one, never half of one. */
function write(file: string, routes: ReadonlyMap<string, Route>): void {
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, `${JSON.stringify(Object.fromEntries(routes))}\n`, { mode: 0o600 });
  renameSync(partial, file);
}

function read(file: string): Record<string, Route> {
  if (!existsSync(file)) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    return parsed as Record<string, Route>;
  } catch (error) {
    throw new VigilError('ERR_JOURNAL', `the OpenClaw routes file ${file} is not valid JSON: move it away`, {
      cause: error,
      details: { file },
    });
  }
}
