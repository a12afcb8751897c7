/**
 * The registry's check of what a poller run in another thread sends it (`RegistryPort` arguments):
 * a thread is a trust boundary, and a malformed message fails the run's call with `ERR_POLLER`
 * instead of corrupting a session. Main thread only: poller threads do not load zod.
 */
import { z } from 'zod';
import { parse } from '../validation.js';
import type { PollerHello, PollerReport, PullRequest, RegistryPort } from './protocol.js';

const count = z.number().int().min(0);

const limiterState = z.strictObject({
  windowEndsAt: z.number().nullable(),
  suppressed: count,
  strikes: count,
  hits: count,
  disabled: z.enum(['strikes', 'lifetime']).nullable(),
});

export const pollerHelloSchema = z.strictObject({
  runId: count,
  threadId: count,
}) satisfies z.ZodType<PollerHello>;

export const pullRequestSchema = z.strictObject({
  waitMs: z.number().min(0).optional(),
}) satisfies z.ZodType<PullRequest>;

const matchReport = z.strictObject({
  offset: count,
  lines: z.array(z.string()),
  pattern: count,
  suppressed: count,
  hit: count,
  truncated: z.boolean(),
});

const processReport = z.strictObject({
  processId: z.string().min(1),
  cursor: count,
  limiter: limiterState.optional(),
  heartbeatCursor: count,
  matches: z.array(matchReport),
  disabled: z.strictObject({ reason: z.enum(['strikes', 'lifetime']), suppressed: count }).optional(),
  heartbeat: z.strictObject({ from: count, upTo: count, text: z.string(), at: z.number() }).optional(),
  drained: z.boolean(),
});

export const pollerReportSchema = z.strictObject({
  probes: z.array(count),
  processes: z.array(processReport),
}) satisfies z.ZodType<PollerReport>;

const what = (call: string) => ({ what: `poller ${call}`, code: 'ERR_POLLER' as const });

/** `port` with every call's argument checked first: what a host exposes to a poller in another thread. */
export function checkedRegistry(port: RegistryPort): RegistryPort {
  return {
    hello: (info) => port.hello(parse(pollerHelloSchema, info, what('hello'))),
    pull: (request) => port.pull(parse(pullRequestSchema, request, what('pull'))),
    commit: (report) => port.commit(parse(pollerReportSchema, report, what('commit'))),
  };
}
