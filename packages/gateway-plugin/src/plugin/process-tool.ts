import {
  type LogPage,
  type ProcessInfo,
  type RunResult,
  spawnInputSchema,
  TERMINAL_STATES,
  type Vigil,
  yieldMsSchema,
} from '@vigil/core';
import { parse, spawnErrorCode } from '@vigil/core/host';
import { z } from 'zod';
import { resolveProcess } from './process-ref.js';

const spawnFields = spawnInputSchema.omit({ sessionId: true }).partial().shape;

/** The longest `wait` of the tool: an agent's turn is not held longer. */
const MAX_TOOL_WAIT_MS = 600_000;

/** Input of the agent-facing `process` tool: one flat object, so every gateway's tool API accepts it. */
export const processToolInputSchema = z
  .strictObject({
    action: z.enum([
      'spawn',
      'poll',
      'log',
      'wait',
      'kill',
      'write',
      'close_stdin',
      'resize',
      'list',
      'remove',
      'clear',
    ]),
    /** The process's id, or a unique prefix of it (`proc_` may be left out). */
    processId: z.string().min(1).max(64).optional(),
    ...spawnFields,
    offset: z.number().int().min(0).optional(),
    limit: z.number().int().min(1).max(1000).optional(),
    yieldMs: yieldMsSchema.optional(),
    /** `log`: keep the terminal escape sequences (colours) of the lines. */
    ansi: z.boolean().optional(),
    signal: z.enum(['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP']).optional(),
    data: z
      .string()
      .max(1 << 20)
      .optional(),
    /** With `write`: end stdin after `data` (in a terminal, types ^D). */
    eof: z.boolean().optional(),
  })
  .superRefine((input, ctx) => {
    const needs = (field: 'processId' | 'command' | 'data' | 'cols' | 'rows') => {
      if (input[field] === undefined) {
        ctx.addIssue({ code: 'custom', path: [field], message: `is required for action "${input.action}"` });
      }
    };
    if (input.action === 'spawn') needs('command');
    else if (input.action !== 'list' && input.action !== 'clear') needs('processId');
    if (input.action === 'write' && input.eof !== true) needs('data');
    if (input.action === 'resize') {
      needs('cols');
      needs('rows');
    }
    // `timeoutMs` is the spawn's kill deadline, or how long a wait blocks: the latter has a lower cap.
    if (input.action === 'wait' && (input.timeoutMs ?? 0) > MAX_TOOL_WAIT_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['timeoutMs'],
        message: `must be at most ${MAX_TOOL_WAIT_MS} ms for action "wait"`,
      });
    }
  });

export type ProcessToolInput = z.input<typeof processToolInputSchema>;

export interface ToolContext {
  readonly sessionId: string;
  readonly signal?: AbortSignal;
}

export interface ToolResult {
  /** What the agent reads. */
  readonly text: string;
  readonly data: unknown;
}

/** A tool definition any gateway can register as is. */
export interface ToolDefinition {
  readonly name: string;
  readonly description: string;
  /** JSON Schema of the input, generated from the same zod schema that validates it. */
  readonly inputSchema: Record<string, unknown>;
  execute(input: unknown, context: ToolContext): Promise<ToolResult>;
}

const DESCRIPTION = `Run and follow background commands (builds, servers, log tails) without blocking.
Actions: spawn (start a command; you are notified when it finishes, when its output matches a "watch" pattern, or with heartbeats), poll (status and recent output, does not consume the completion), log (paged output lines, escape sequences stripped unless ansi is true; secrets are always redacted), wait (block until it ends, up to timeoutMs), kill, write (stdin; eof: true ends it after data), close_stdin (EOF), resize (cols and rows of a command spawned with pty: true, which runs in a terminal), list, remove (forget a finished process and its output), clear (remove every finished process).
spawn options: timeoutMs kills the command (and its children) once it ran that long; yieldMs (at most 120000) waits that long first: a command that finishes sooner returns its exit code and output here and sends no notification, one still running continues in the background.
A processId may be shortened to a unique prefix. log without offset shows the last 200 lines (limit) and the offset to page back. Killing a process here tells you how it ended: no notification of it follows.`;

/** A spawn's result: the exit and output of a command that ended within `yieldMs`, else that it runs. */
function renderStart(result: { readonly process: ProcessInfo } & Partial<RunResult>): string {
  const { process } = result;
  if (result.finished === true) {
    const output = result.tail ? `Output (last part):\n${result.tail}` : 'It printed nothing.';
    return `Ran ${summary(process)}.\n${output}`;
  }
  const waiting = result.finished === false ? ' It is still running after yieldMs.' : '';
  const note = process.state === 'pending_approval' ? ' It waits for a human approval.' : '';
  return `Started ${summary(process)}.${waiting}${note} You will be notified when it finishes.`;
}

/** A `list` line: the process's short name first, as people scan for it. */
function listLine(process: ProcessInfo): string {
  return `[${process.name}] ${summary(process)}`;
}

function summary(process: ProcessInfo): string {
  const exit = process.exitCode === null ? '' : `, exit code ${process.exitCode}`;
  return `${process.processId} \`${process.command}\`: ${process.state}${exit}${process.reason ? ` (${process.reason})` : ''}`;
}

/** A page of lines with where it sits in the output, and how to page on: what agents expect. */
function renderLog(page: LogPage): string {
  const { offset, lines, totalLines } = page;
  if (totalLines === 0) return 'No output yet.';
  if (offset === 0 && !page.hasMore) return lines.join('\n');
  const hints = [
    offset > 0 ? `earlier lines: offset ${Math.max(0, offset - Math.max(1, lines.length))}` : '',
    page.hasMore ? `more: offset ${offset + lines.length}` : '',
  ].filter(Boolean);
  const where = `[lines ${offset + 1}-${offset + lines.length} of ${totalLines}]`;
  return [where, ...lines, ...(hints.length > 0 ? [`(${hints.join('; ')})`] : [])].join('\n');
}

/** Parses tool input: `ERR_INVALID_INPUT` naming the field, `ERR_INVALID_PATTERN` naming a bad pattern. */
function parseInput(input: unknown): z.output<typeof processToolInputSchema> {
  return parse(processToolInputSchema, input, { what: 'process tool input', code: spawnErrorCode });
}

/** The `process` tool for agents, bound to one vigil; every action is scoped to the calling session. */
export function createProcessTool(vigil: () => Vigil): ToolDefinition {
  return {
    name: 'process',
    description: DESCRIPTION,
    inputSchema: z.toJSONSchema(processToolInputSchema, { io: 'input' }) as Record<string, unknown>,
    async execute(raw, context) {
      const input = parseInput(raw);
      const v = vigil();
      const { sessionId } = context;
      // Spawn takes no process; every other action that names one works on the caller's own only.
      const processId =
        input.processId === undefined || input.action === 'spawn'
          ? ''
          : resolveProcess(v, sessionId, input.processId).processId;
      switch (input.action) {
        case 'spawn': {
          const {
            action: _action,
            processId: _p,
            offset: _o,
            limit: _l,
            ansi: _a,
            signal: _s,
            data: _d,
            eof: _e,
            yieldMs,
            ...spawn
          } = input;
          // `replaces` may be shortened like any processId.
          const replaces =
            spawn.replaces === undefined
              ? {}
              : { replaces: resolveProcess(v, sessionId, spawn.replaces, 'replaces').processId };
          const spawnInput = { ...spawn, ...replaces, command: spawn.command!, sessionId };
          if (yieldMs === undefined) {
            const process = v.processes.spawn(spawnInput);
            return { text: renderStart({ process }), data: process };
          }
          const result = await v.processes.run(
            { ...spawnInput, yieldMs },
            context.signal === undefined ? {} : { signal: context.signal },
          );
          return { text: renderStart(result), data: result };
        }
        case 'list': {
          const all = v.processes.list({ sessionId });
          return { text: all.length === 0 ? 'No processes.' : all.map(listLine).join('\n'), data: all };
        }
        case 'remove': {
          const removed = v.processes.remove(processId);
          return { text: `Removed ${summary(removed)}.`, data: removed };
        }
        case 'clear': {
          const finished = v.processes
            .list({ sessionId })
            .filter((process) => TERMINAL_STATES.has(process.state));
          const removed = finished.map((process) => v.processes.remove(process.processId));
          return { text: `Removed ${removed.length} finished processes.`, data: removed };
        }
        case 'poll': {
          const result = v.processes.poll(processId);
          return { text: `${summary(result.process)}\nRecent output:\n${result.tail}`, data: result };
        }
        case 'log': {
          const page = await v.processes.log(processId, {
            ...(input.offset === undefined ? {} : { offset: input.offset }),
            ...(input.limit === undefined ? {} : { limit: input.limit }),
            ...(input.ansi === undefined ? {} : { ansi: input.ansi }),
          });
          return { text: renderLog(page), data: page };
        }
        case 'wait': {
          const result = await v.processes.wait(processId, {
            timeoutMs: input.timeoutMs ?? 30_000,
            ...(context.signal === undefined ? {} : { signal: context.signal }),
          });
          const tail = result.timedOut ? ' (still running)' : `\n${v.processes.poll(processId).tail}`;
          return { text: `${summary(result.process)}${tail}`, data: result };
        }
        case 'kill': {
          // The agent reads how it ended right here: a notification of it would cost another turn.
          const process = await v.processes.kill(processId, {
            consumeCompletion: true,
            ...(input.signal ? { signal: input.signal } : {}),
          });
          return { text: summary(process), data: process };
        }
        case 'write': {
          const data = input.data ?? '';
          const eof = input.eof === true;
          await v.processes.write(processId, data, {
            ...(context.signal === undefined ? {} : { signal: context.signal }),
            ...(eof ? { eof } : {}),
          });
          return {
            text: `Wrote ${data.length} characters to ${processId}${eof ? ', then EOF' : ''}.`,
            data: { ok: true },
          };
        }
        case 'close_stdin': {
          v.processes.closeStdin(processId);
          return { text: `Closed the stdin of ${processId} (EOF).`, data: { ok: true } };
        }
        case 'resize': {
          v.processes.resize(processId, { cols: input.cols!, rows: input.rows! });
          return {
            text: `Resized the terminal of ${processId} to ${input.cols}x${input.rows}.`,
            data: { ok: true },
          };
        }
      }
    },
  };
}
