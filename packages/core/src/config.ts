import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { MAX_TIMEOUT_MS } from './process/spawn-spec.js';
import { secretsSchema } from './secrets/secrets-config.js';
import { parse } from './validation.js';

const ms = (max = 86_400_000) => z.number().int().min(0).max(max);
const positive = (max = Number.MAX_SAFE_INTEGER) => z.number().int().min(1).max(max);
const cores = Math.max(1, availableParallelism());

/** Worker pool settings; used by the worker host (`@vigil/worker`). */
export const poolOptionsSchema = z
  .strictObject({
    /** Threads kept alive while the host is open. Default (resolved by the host): min(2, cores). */
    minThreads: z.number().int().min(0).max(1024).optional(),
    /** Upper bound on threads. Default (resolved by the host): max(2, cores). */
    maxThreads: positive(1024).optional(),
    /** A thread above `minThreads` idle this long is stopped. Default 30 s. */
    idleTimeoutMs: ms().default(30_000),
    /** Pollers multiplexed on one thread. 1 gives each session a thread of its own. Default 512. */
    pollersPerThread: positive(100_000).default(512),
    /**
     * Threads for quarantined sessions (a poller that was stuck, or patterns that cannot run in
     * linear time); no other session's poller runs there. Default 1.
     */
    isolatedThreads: positive(1024).default(1),
    /** V8 limits per thread; a thread that exceeds them is replaced. */
    resourceLimits: z
      .strictObject({
        maxOldGenerationSizeMb: positive(65_536).optional(),
        maxYoungGenerationSizeMb: positive(65_536).optional(),
        codeRangeSizeMb: positive(65_536).optional(),
        stackSizeMb: positive(1024).optional(),
      })
      .prefault({}),
  })
  .superRefine((pool, ctx) => {
    const { minThreads, maxThreads } = resolvePoolThreads(pool);
    if (minThreads > maxThreads) {
      ctx.addIssue({
        code: 'custom',
        path: ['minThreads'],
        message: `must not exceed maxThreads (${maxThreads})`,
      });
    }
  });

/**
 * The thread bounds of a pool, with the machine-dependent defaults filled in: min(2, cores) and
 * max(2, cores), or, when only one bound is given, the other one brought in line with it. Resolved
 * at run time, so the schema (and the JSON Schema made from it) is the same on every machine.
 */
export function resolvePoolThreads(pool: {
  readonly minThreads?: number | undefined;
  readonly maxThreads?: number | undefined;
}): {
  readonly minThreads: number;
  readonly maxThreads: number;
} {
  const maxThreads = pool.maxThreads ?? Math.max(2, cores, pool.minThreads ?? 0);
  const minThreads = pool.minThreads ?? Math.min(2, cores, maxThreads);
  return { minThreads, maxThreads };
}

/** The whole vigil configuration. Every field has a default. */
export const configSchema = z.strictObject({
  pool: poolOptionsSchema.prefault({}),
  /** How long a poller may take to stop cooperatively before its thread is terminated. Default 2 s. */
  stopTimeoutMs: ms(600_000).default(2_000),
  /** Upper bound for `vigil.close()`. Default 10 s. */
  shutdownTimeoutMs: ms(3_600_000).default(10_000),
  /** A session with no activity for this long is closed by the reaper (0 disables). Default 1 h. */
  sessionIdleTtlMs: ms().default(3_600_000),
  /**
   * A directory for vigil's state: the durable journal (`<stateDir>/journal.db`: tapes,
   * notifications, approvals, sessions, processes; restored by the next vigil on the same directory)
   * and the output spools (`<stateDir>/spool`). Default: none; everything in memory, spools in a
   * private temporary directory that `vigil.close()` removes.
   */
  stateDir: z.string().min(1).max(4096).optional(),
  journal: z
    .strictObject({
      /**
       * With \`stateDir\`: \`NORMAL\` commits survive vigil's death (SIGKILL, a crash) but the last ones
       * may be lost with the machine (power loss); \`FULL\` fsyncs every commit. Default \`NORMAL\`.
       */
      synchronous: z.enum(['NORMAL', 'FULL']).default('NORMAL'),
      /**
       * With \`stateDir\`: the journal's database file grows to this many bytes at most (rounded up
       * to SQLite pages); a write past it fails as on a full disk (\`ERR_JOURNAL_FULL\`). 0: no cap
       * but the disk's. Default 0.
       */
      maxBytes: z
        .number()
        .int()
        .min(0)
        .max(2 ** 48)
        .default(0),
    })
    .prefault({}),
  /**
   * Where the journal lives. `sqlite` (default): `<stateDir>/journal.db` when there is a
   * `stateDir`, else nothing durable. `redis`: one Redis server shared by several instances, each
   * session served by the instance holding its lease (see `store/redis-store.ts`).
   */
  store: z
    .discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('sqlite') }),
      z.strictObject({
        kind: z.literal('redis'),
        /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
        url: z
          .string()
          .max(4096)
          .regex(/^rediss?:\/\/[^\s]+$/, 'must be a redis:// or rediss:// URL'),
        /** Prefix of every key vigil writes. Default `vigil:`. */
        prefix: z.string().min(1).max(256).default('vigil:'),
        /** A session's lease expires this long after its owner last renewed it (every third of it). Default 10 s. */
        leaseMs: z.number().int().min(300).max(3_600_000).default(10_000),
        /** A synchronous store operation (a commit that must be durable, the restore) fails past this. Default 2 s. */
        timeoutMs: positive(600_000).default(2_000),
        /**
         * This instance's id in the cluster. Default: kept in `<stateDir>/instance-id` (the same
         * instance after a restart on the same stateDir), random per start without stateDir.
         */
        instanceId: z
          .string()
          .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, dots, dashes or underscores')
          .optional(),
      }),
    ])
    .default({ kind: 'sqlite' }),
  output: z
    .strictObject({
      /**
       * Spool bytes kept per process: the first eighth and the last seven eighths; what a process
       * prints beyond is dropped from the middle and counted. At least 1 MiB. Default 64 MiB.
       */
      maxBytes: z
        .number()
        .int()
        .min(1 << 20)
        .max(2 ** 40)
        .default(64 << 20),
      /** Longer lines are matched on their first this many characters, and flagged. Default 4096 chars. */
      maxLineLength: positive(1 << 20).default(4096),
    })
    .prefault({}),
  watch: z
    .strictObject({
      /** One delivered match per process per window. Default 15 s. */
      cooldownMs: ms().default(15_000),
      /** Consecutive windows with drops that disable watching. Default 3. */
      strikeLimit: positive(1000).default(3),
      /** Delivered matches after which watching is disabled. Default 8. */
      lifetimeMaxHits: positive(1_000_000).default(8),
      /** Lines and characters carried by one match notification. Defaults 20 / 2000. */
      maxLinesPerMatch: positive(1000).default(20),
      maxCharsPerMatch: positive(1_000_000).default(2000),
      /** A poller busy on one batch longer than this is considered stuck (catastrophic regex). Default 1 s. */
      matchTimeoutMs: positive(600_000).default(1_000),
      /**
       * Times one pattern may exceed `matchTimeoutMs` in a session before it is disabled there (for
       * every process) and refused for new processes. Default 2.
       */
      patternTimeoutLimit: positive(1000).default(2),
      /**
       * `auto`: a regex V8 can run in linear time falls back to that engine when it backtracks too
       * much, so it never gets stuck; any other runs with backtracking, its session's poller on the
       * host's isolated threads. `linear`: a spawn with a regex that cannot run in linear time is
       * refused (`ERR_INVALID_PATTERN`). Default `auto`.
       */
      regexEngine: z.enum(['auto', 'linear']).default('auto'),
      /** Global breaker: more than `maxMatches` in `windowMs` across all processes pauses watch notifications. */
      breaker: z
        .strictObject({
          maxMatches: positive(1_000_000).default(15),
          windowMs: positive().default(10_000),
          pauseMs: positive().default(30_000),
        })
        .prefault({}),
    })
    .prefault({}),
  completion: z
    .strictObject({
      /** Characters of final output carried by a completion. Default 2000. */
      outputChars: z.number().int().min(0).max(1_000_000).default(2000),
    })
    .prefault({}),
  tape: z
    .strictObject({
      /** Events retained per session. Default 10,000. */
      maxEvents: positive(10_000_000).default(10_000),
      /** Bytes (JSON) retained per session. Default 8 MiB. */
      maxBytes: positive(1 << 30).default(8 << 20),
      /** Default and maximum page size of `tape.read`. */
      defaultLimit: positive(1000).default(100),
      maxLimit: positive(1000).default(1000),
      /** Cap on `waitMs` of a long-poll. Default 60 s. */
      maxWaitMs: ms(3_600_000).default(60_000),
      /** How long a closed session's tape stays readable. Default 10 min. */
      closedRetentionMs: ms().default(600_000),
      /** Closed sessions kept readable at most; beyond, the one closed longest ago is forgotten. Default 1000. */
      maxClosedSessions: z.number().int().min(0).max(1_000_000).default(1000),
    })
    .prefault({}),
  delivery: z
    .strictObject({
      retry: z
        .strictObject({
          /** First retry delay, doubled per attempt up to `maxDelayMs`. */
          initialDelayMs: positive(3_600_000).default(100),
          maxDelayMs: positive(3_600_000).default(30_000),
        })
        .prefault({}),
      /** A `deliver` call that has not settled after this long counts as failed. Default 30 s. */
      timeoutMs: positive(3_600_000).default(30_000),
      /** Notifications in one `deliverBatch` call at most. Default 50. */
      maxBatch: positive(10_000).default(50),
      /** Characters (of the notifications' JSON) in one `deliverBatch` call at most; one larger notification goes alone. Default 32 000. */
      maxBatchChars: positive(100_000_000).default(32_000),
    })
    .prefault({}),
  processes: z
    .strictObject({
      maxPerSession: positive(100_000).default(64),
      maxTotal: positive(1_000_000).default(1024),
      /** Finished processes stay listed this long. Default 30 min. */
      finishedTtlMs: ms().default(1_800_000),
      /** Finished processes kept per session (and their spools); the oldest are forgotten first. Default 64. */
      maxFinishedPerSession: positive(100_000).default(64),
      /** Finished processes kept in all. Default 1024. */
      maxFinished: positive(1_000_000).default(1024),
      /**
       * Who forks the children: `helper`, a small process of vigil's (a fork's cost grows with the
       * forking process's memory: this keeps it off the main thread), or `direct`, this process.
       */
      spawner: z.enum(['helper', 'direct']).default('helper'),
      /** SIGTERM to SIGKILL grace. Default 2 s. */
      killGraceMs: ms(600_000).default(2_000),
      /**
       * `timeoutMs` of a spawn that names none: a command running longer is killed. Default 0:
       * never (background commands are often servers and log tails that run until stopped).
       */
      timeoutMs: ms(MAX_TIMEOUT_MS).default(0),
    })
    .prefault({}),
  stdin: z
    .strictObject({
      /** Largest `processes.write`, in bytes (UTF-8). Default 1 MiB. */
      maxWriteBytes: positive(1 << 30).default(1 << 20),
      /** Bytes written to a session's processes that they have not read yet; a write beyond is refused. Default 4 MiB. */
      maxPendingBytes: positive(1 << 30).default(4 << 20),
      /** A write the child has not read after this long fails, and closes its stdin. Default 30 s. */
      writeTimeoutMs: positive(3_600_000).default(30_000),
    })
    .prefault({}),
  approvals: z
    .strictObject({
      /** Pending approvals expire after this long (0 = never). */
      timeoutMs: ms().default(0),
      /**
       * Approval snapshots that may wait for one slow subscriber; past it the oldest waiting ones
       * are skipped, never the newest. Default 16.
       */
      subscriberBacklog: positive(100_000).default(16),
    })
    .prefault({}),
  /** What children do not inherit, and what is redacted from output (`secrets/secrets-config.ts`). */
  secrets: secretsSchema.prefault({}),
});

export type VigilConfigInput = z.input<typeof configSchema>;
export type VigilConfig = z.output<typeof configSchema>;
export type PoolOptionsInput = z.input<typeof poolOptionsSchema>;
export type PoolOptions = z.output<typeof poolOptionsSchema>;

/** Validates vigil's options: `ERR_INVALID_CONFIG` naming every offending field. */
export function parseConfig(input: unknown): VigilConfig {
  return parse(configSchema, input ?? {}, { what: 'vigil options', code: 'ERR_INVALID_CONFIG' });
}
