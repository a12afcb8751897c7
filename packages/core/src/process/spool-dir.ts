import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VigilError } from '../errors.js';
import { Spool } from './spool.js';

/**
 * Where spools live: `<stateDir>/spool`, or a private temporary directory that `close()` removes.
 * Created on first use, so a vigil that runs nothing writes nothing.
 */
export class SpoolDir {
  readonly #stateDir: string | undefined;
  readonly #maxBytes: number;
  #path: string | undefined;
  readonly #spools = new Set<Spool>();

  constructor(options: { readonly stateDir: string | undefined; readonly maxBytes: number }) {
    this.#stateDir = options.stateDir;
    this.#maxBytes = options.maxBytes;
  }

  /** A new, empty spool for a process; `ERR_SPOOL` names the path when it cannot be made. */
  create(processId: string): Spool {
    const spool = new Spool(join(this.#directory(), `${processId}.out`), this.#maxBytes);
    this.#spools.add(spool);
    return spool;
  }

  /** The spool a previous run left at `path` (a restored process). */
  reopen(path: string): Spool {
    this.#directory();
    const spool = new Spool(path, this.#maxBytes, { existing: true });
    this.#spools.add(spool);
    return spool;
  }

  /** Deletes a spool (its process was forgotten). */
  delete(spool: Spool): void {
    spool.delete();
    this.#spools.delete(spool);
  }

  /**
   * Deletes every spool, and the temporary directory unless `keepDirectory` (a restart-safe stop:
   * the spools of released processes, already closed, stay with their exit statuses).
   */
  close(options: { readonly keepDirectory?: boolean } = {}): void {
    for (const spool of this.#spools) spool.delete();
    this.#spools.clear();
    if (this.#path !== undefined && this.#stateDir === undefined && options.keepDirectory !== true)
      rmSync(this.#path, { recursive: true, force: true });
    this.#path = undefined;
  }

  #directory(): string {
    if (this.#path !== undefined) return this.#path;
    const path = this.#stateDir === undefined ? undefined : join(this.#stateDir, 'spool');
    try {
      if (path === undefined) this.#path = mkdtempSync(join(tmpdir(), 'vigil-spool-'));
      else {
        mkdirSync(path, { recursive: true, mode: 0o700 });
        this.#path = path;
      }
    } catch (cause) {
      const where = path ?? tmpdir();
      throw new VigilError(
        'ERR_SPOOL',
        `cannot create the spool directory ${where}: ${(cause as Error).message}`,
        {
          cause,
          details: { path: where },
        },
      );
    }
    return this.#path;
  }
}
