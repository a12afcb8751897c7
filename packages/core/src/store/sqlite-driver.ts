import { createRequire } from 'node:module';

/**
 * The little of SQLite the journal uses, over one of two drivers: Node's own `node:sqlite` where
 * it exists (Node >= 22.13), else `better-sqlite3` (Node 20). Node's driver needs no native build
 * and is the one that works on every Node 24 (better-sqlite3 12 aborts the process on Node >= 24.19
 * when a statement is collected).
 */
export interface SqlDatabase {
  readonly driver: SqlDriverName;
  prepare(sql: string): SqlStatement;
  /** Runs one or more statements that take no parameters. */
  exec(sql: string): void;
  /** The first column of the first row of `sql` (a pragma's value), or undefined. */
  value(sql: string, ...params: unknown[]): unknown;
  /** Runs `body` in one transaction: committed if it returns, rolled back if it throws. */
  transaction(body: () => void): void;
  close(): void;
}

export interface SqlStatement {
  run(...params: unknown[]): void;
  /** Every row, as objects keyed by column name. */
  all(...params: unknown[]): Record<string, unknown>[];
  /** The first column of every row. */
  column(...params: unknown[]): unknown[];
}

export type SqlDriverName = 'node:sqlite' | 'better-sqlite3';

interface NodeSqlite {
  readonly DatabaseSync: new (
    path: string,
    options?: { readonly timeout?: number },
  ) => {
    readonly isTransaction: boolean;
    prepare(sql: string): {
      run(...params: unknown[]): unknown;
      all(...params: unknown[]): Record<string, unknown>[];
    };
    exec(sql: string): void;
    close(): void;
  };
}

interface BetterSqlite3Database {
  readonly inTransaction: boolean;
  prepare(sql: string): {
    run(...params: unknown[]): unknown;
    all(...params: unknown[]): Record<string, unknown>[];
    pluck(): { all(...params: unknown[]): unknown[] };
  };
  exec(sql: string): void;
  close(): void;
}

/** `node:sqlite`, when this Node has it without a flag. */
function nodeSqlite(): NodeSqlite | undefined {
  try {
    return process.getBuiltinModule?.('node:sqlite') as NodeSqlite | undefined;
  } catch {
    // Node 22.5 to 22.12 know the module only behind --experimental-sqlite.
    return undefined;
  }
}

/** Which driver `openDatabase` uses on this Node. */
export function sqlDriverName(): SqlDriverName {
  return nodeSqlite() === undefined ? 'better-sqlite3' : 'node:sqlite';
}

/** Opens (or creates) the database at `path`; a locked database fails at once (no busy wait). */
export function openDatabase(path: string): SqlDatabase {
  const sqlite = nodeSqlite();
  if (sqlite !== undefined) {
    const db = new sqlite.DatabaseSync(path, { timeout: 0 });
    return wrap(
      'node:sqlite',
      db,
      () => db.isTransaction,
      (sql) => {
        const statement = db.prepare(sql);
        return {
          run: (...params) => void statement.run(...params),
          all: (...params) => statement.all(...params),
          column: (...params) => statement.all(...params).map((row) => Object.values(row)[0]),
        };
      },
    );
  }
  const Database = createRequire(import.meta.url)('better-sqlite3') as new (
    path: string,
    options: { readonly timeout: number },
  ) => BetterSqlite3Database;
  const db = new Database(path, { timeout: 0 });
  return wrap(
    'better-sqlite3',
    db,
    () => db.inTransaction,
    (sql) => {
      const statement = db.prepare(sql);
      let plucked: { all(...params: unknown[]): unknown[] } | undefined;
      return {
        run: (...params) => void statement.run(...params),
        all: (...params) => statement.all(...params),
        column: (...params) => {
          plucked ??= db.prepare(sql).pluck();
          return plucked.all(...params);
        },
      };
    },
  );
}

function wrap(
  driver: SqlDriverName,
  db: { exec(sql: string): void; close(): void },
  inTransaction: () => boolean,
  prepare: (sql: string) => SqlStatement,
): SqlDatabase {
  return {
    driver,
    prepare,
    exec: (sql) => db.exec(sql),
    value: (sql, ...params) => prepare(sql).column(...params)[0],
    transaction(body) {
      db.exec('BEGIN');
      try {
        body();
        db.exec('COMMIT');
      } catch (error) {
        // A failed COMMIT (a full disk) may have ended the transaction already.
        if (inTransaction()) db.exec('ROLLBACK');
        throw error;
      }
    },
    close: () => db.close(),
  };
}

/**
 * SQLite's result code of a failure, as a name (`SQLITE_BUSY`, `SQLITE_FULL`, ...), whichever
 * driver threw it; undefined for anything else. better-sqlite3 names it in `code`; `node:sqlite`
 * has `code: 'ERR_SQLITE_ERROR'` and the number in `errcode`.
 */
export function sqliteCode(error: unknown): string | undefined {
  const { code, errcode } = (error ?? {}) as { code?: unknown; errcode?: unknown };
  if (typeof code === 'string' && code.startsWith('SQLITE_')) return code;
  if (typeof errcode === 'number') return RESULT_CODES[errcode & 0xff] ?? `SQLITE_${errcode}`;
  return undefined;
}

/** The primary result codes the journal tells apart (sqlite3.h). */
const RESULT_CODES: Readonly<Record<number, string>> = {
  1: 'SQLITE_ERROR',
  5: 'SQLITE_BUSY',
  6: 'SQLITE_LOCKED',
  8: 'SQLITE_READONLY',
  10: 'SQLITE_IOERR',
  11: 'SQLITE_CORRUPT',
  13: 'SQLITE_FULL',
  14: 'SQLITE_CANTOPEN',
  26: 'SQLITE_NOTADB',
};
