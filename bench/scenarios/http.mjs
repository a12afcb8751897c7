/**
 * HTTP delivery latency with 100 sessions connected over the HTTP API of the embedded gateway.
 * Each session has a long-running echo child watching 'PING' (rate limits out of the way); a sample
 * writes `PING <k>` to one child's stdin (`vigil.processes.write`, in-process, round-robin over the
 * sessions; first one at a time, then 10 in flight) and ends when the client receives that line's
 * `watch.match` tape event, through one of these transports (one at a time, each closed before the
 * next):
 *
 * - in-process `vigil.tape.subscribe`, one subscriber per session: what vigil itself takes, no HTTP;
 * - 100 HTTP long-poll loops, one per session (`GET /v1/sessions/:sid/events?after&wait=30000`,
 *   `node:http` with a keep-alive Agent of 200 sockets);
 * - one multiplexed SSE stream for all 100 sessions (`GET /v1/stream`, read with fetch and a small
 *   parser), resumed at the current cursors with `Last-Event-ID`;
 * - 10 SSE streams of 10 sessions each.
 *
 * Plus the pipe-only baseline (one unwatched echo child, sequential: write → echo in its buffer).
 * The one-at-a-time p99 (a few ms, in-process too) is mostly the child's wake-up: the same tail
 * shows between `processes.write` and the child's echo reaching the parent (`process:output`);
 * with 10 in flight the p50 is mostly queueing behind the other samples (CPU-bound on 2 cores).
 * The worker host (shared threads) goes through `startGateway`; `startGateway` has no in-thread
 * option, so the in-thread host wires the same plugin, handler and server by hand. The host with
 * one thread per session is skipped: 100 sessions would need 100 threads on this machine.
 */
import { Agent, createServer, request } from 'node:http';
import { setImmediate as tick } from 'node:timers/promises';
import {
  createGatewayPlugin,
  createHttpHandler,
  encodeStreamId,
  startGateway,
} from '../../packages/gateway-plugin/dist/index.js';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { EXCLUSIVE, HOSTS, IN_THREAD, SHARED } from '../lib/hosts.mjs';
import { percentile, pooled, round, within } from '../lib/measure.mjs';

const SCENARIO = 'http';
const SESSIONS = 100;
/** The loaded phase (after the one-at-a-time phase): latency including queueing behind the others. */
const IN_FLIGHT = 10;
/** One sample per session first: connections, subscriptions and JIT warm up. */
const WARM_UP = SESSIONS;
const ECHO = 'while read l; do echo "$l"; done';
const TOKEN = 'bench-http-token-0123456789abcdef';
/** Rate limits out of the way: every match is reported. */
const OPTIONS = {
  watch: { cooldownMs: 0, lifetimeMaxHits: 1_000_000, breaker: { maxMatches: 1_000_000 } },
};

const ms = (ns) => Number(ns) / 1e6;

/** The embedded gateway on a free loopback port, on the named host. */
async function openGateway(host) {
  if (host === SHARED) {
    const gateway = await startGateway({ port: 0, token: TOKEN, config: OPTIONS });
    return { url: gateway.url, vigil: gateway.plugin.vigil, close: gateway.close };
  }
  if (host !== IN_THREAD) throw new Error(`unknown host ${host}`);
  // What startGateway does, with the plugin's in-thread host.
  const plugin = createGatewayPlugin({ config: OPTIONS, host: 'in-thread', inject: () => {} });
  const vigil = plugin.vigil;
  const handler = createHttpHandler(vigil, {
    token: TOKEN,
    openSession: (sessionId) => vigil.sessions.open(sessionId, { deliver: plugin.deliver }),
  });
  const server = createServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = async () => {
    await handler.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await plugin.hooks.gatewayStop();
  };
  return { url: `http://127.0.0.1:${server.address().port}`, vigil, close };
}

/**
 * A JSON request with the bearer token. `track` receives the request (to abort it).
 * @returns {Promise<any>}
 */
function call(agent, url, method, path, body, track) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = { authorization: `Bearer ${TOKEN}` };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const req = request(new URL(path, url), { method, agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
        else resolve(JSON.parse(text));
      });
    });
    req.on('error', reject);
    track?.(req);
    req.end(payload);
  });
}

/** Server-Sent Events of a fetch body: `{ event, data, id }` per dispatched block. */
async function* sseEvents(body) {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
      let event = 'message';
      let id;
      const data = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') data.push(value);
        else if (field === 'event') event = value;
        else if (field === 'id') id = value;
      }
      if (data.length > 0) yield { event, id, data: data.join('\n') };
    }
  }
}

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(host, { quick }) {
  const samples = quick ? 300 : 1000;
  const gateway = await openGateway(host);
  const { url, vigil } = gateway;
  const agent = new Agent({ keepAlive: true, maxSockets: 200 });
  const ids = Array.from({ length: SESSIONS }, (_, i) => `http-${i}`);
  /** Resolvers of the samples waiting for their `watch.match`, by line number. */
  const pending = new Map();
  const onTapeEvent = (event) => {
    if (event.type !== 'watch.match') return;
    const arrived = process.hrtime.bigint();
    for (const line of event.data.lines ?? []) {
      const k = /PING (\d+)/.exec(line)?.[1];
      if (k !== undefined) pending.get(Number(k))?.(arrived);
    }
  };
  /** The current cursor (lastSeq) of every session, read over HTTP. */
  const cursors = async () => {
    const { sessions } = await call(agent, url, 'GET', '/v1/sessions');
    return new Map(sessions.map((s) => [s.sessionId, s.lastSeq]));
  };

  /** Starts a receiver; returns the function that stops it and resolves once it is gone. */
  const receivers = {
    async inProcess() {
      // One signal per subscription: a tape subscription adds an abort listener to its signal.
      const controllers = ids.map(() => new AbortController());
      const at = await cursors();
      const loops = ids.map(async (sessionId, i) => {
        const { signal } = controllers[i];
        try {
          for await (const event of vigil.tape.subscribe(sessionId, { after: at.get(sessionId), signal })) {
            onTapeEvent(event);
          }
        } catch (error) {
          if (!signal.aborted) throw error;
        }
      });
      return async () => {
        for (const controller of controllers) controller.abort();
        await Promise.all(loops);
      };
    },
    async longPoll() {
      let stopped = false;
      const open = new Set();
      const at = await cursors();
      const loops = ids.map(async (sessionId) => {
        let after = at.get(sessionId);
        while (!stopped) {
          let req;
          try {
            const page = await call(
              agent,
              url,
              'GET',
              `/v1/sessions/${sessionId}/events?after=${after}&limit=1000&wait=30000`,
              undefined,
              (r) => {
                req = r;
                open.add(r);
              },
            );
            if (page.reset) throw new Error(`tape of ${sessionId} reset past ${after}`);
            for (const event of page.events) onTapeEvent(event);
            after = page.next;
          } catch (error) {
            if (!stopped) throw error;
          } finally {
            open.delete(req);
          }
        }
      });
      return async () => {
        stopped = true;
        for (const req of open) req.destroy();
        await Promise.all(loops);
      };
    },
    /** `streams` SSE streams of SESSIONS / streams sessions each. */
    async sse(streams) {
      const controller = new AbortController();
      const at = await cursors();
      const per = SESSIONS / streams;
      const readers = [];
      for (let s = 0; s < streams; s++) {
        const mine = ids.slice(s * per, (s + 1) * per);
        const lastEventId = encodeStreamId(new Map(mine.map((id) => [id, at.get(id)])));
        const res = await fetch(`${url}/v1/stream?sessions=${mine.join(',')}`, {
          headers: { authorization: `Bearer ${TOKEN}`, 'last-event-id': lastEventId },
          signal: controller.signal,
        });
        if (res.status !== 200) throw new Error(`stream ${s}: ${res.status} ${await res.text()}`);
        readers.push(
          (async () => {
            try {
              for await (const { event, data } of sseEvents(res.body)) {
                if (event === 'tape') onTapeEvent(JSON.parse(data).event);
                else if (event === 'failure' || event === 'reset') throw new Error(`stream ${s}: ${data}`);
              }
            } catch (error) {
              if (!controller.signal.aborted) throw error;
            }
          })(),
        );
      }
      return async () => {
        controller.abort();
        await Promise.all(readers);
      };
    },
  };

  let line = 0;
  /** `count` writes, `inFlight` at a time, round-robin over the sessions; the first `skip` are not kept. */
  const sample = async (processIds, count, inFlight, skip) => {
    const times = [];
    await pooled(count, inFlight, async (i) => {
      const k = line++;
      const arrived = new Promise((resolve) => pending.set(k, resolve));
      const sent = process.hrtime.bigint();
      await vigil.processes.write(processIds[k % SESSIONS], `PING ${k}\n`);
      const at = await within(arrived, 10_000, `sample ${i} (line ${k})`);
      pending.delete(k);
      if (i >= skip) times.push(ms(at - sent));
    });
    return times;
  };

  const rows = [];
  try {
    await pooled(SESSIONS, IN_FLIGHT, (i) => call(agent, url, 'POST', '/v1/sessions', { sessionId: ids[i] }));
    const processIds = [];
    await pooled(SESSIONS, IN_FLIGHT, async (i) => {
      const body = { command: ECHO, watch: ['PING'] };
      const proc = await call(agent, url, 'POST', `/v1/sessions/${ids[i]}/processes`, body);
      processIds[i] = proc.processId;
    });

    const transports = [
      ['in-process tape.subscribe ×100 (no HTTP)', () => receivers.inProcess()],
      ['long-poll ×100 (one per session)', () => receivers.longPoll()],
      ['SSE, 1 stream × 100 sessions', () => receivers.sse(1)],
      ['SSE, 10 streams × 10 sessions', () => receivers.sse(10)],
    ];
    for (const [name, start] of transports) {
      const stop = await start();
      let sequential;
      let loaded;
      try {
        sequential = await sample(processIds, WARM_UP + samples, 1, WARM_UP);
        loaded = await sample(processIds, samples, IN_FLIGHT, 0);
      } finally {
        await stop();
      }
      rows.push(
        metric(
          `${name}: write → watch.match p50 (${sequential.length} samples, one at a time)`,
          round(percentile(sequential, 50), 2),
          'ms',
        ),
        metric(`${name}: p99 (one at a time)`, round(percentile(sequential, 99), 2), 'ms'),
        metric(
          `${name}: p50 (${loaded.length} samples, ${IN_FLIGHT} in flight)`,
          round(percentile(loaded, 50), 2),
          'ms',
        ),
        metric(`${name}: p99 (${IN_FLIGHT} in flight)`, round(percentile(loaded, 99), 2), 'ms'),
      );
    }

    // Pipe-only baseline: an unwatched echo child; time until its echo is in the buffer.
    const plain = vigil.processes.spawn({ sessionId: ids[0], command: ECHO });
    const pipe = [];
    const pipeSamples = quick ? 100 : 300;
    for (let i = 0; i < 20 + pipeSamples; i++) {
      const before = vigil.processes.poll(plain.processId).process.outputBytes;
      const sent = process.hrtime.bigint();
      await vigil.processes.write(plain.processId, `PONG ${i}\n`);
      const deadline = Date.now() + 5_000;
      while (vigil.processes.poll(plain.processId).process.outputBytes <= before) {
        if (Date.now() > deadline) throw new Error(`pipe sample ${i}: no echo within 5 s`);
        await tick();
      }
      if (i >= 20) pipe.push(ms(process.hrtime.bigint() - sent));
    }
    rows.push(
      metric(
        `pipe-only baseline p50 (write → echo in buffer, ${pipeSamples} sequential)`,
        round(percentile(pipe, 50), 2),
        'ms',
      ),
      metric('pipe-only baseline p99', round(percentile(pipe, 99), 2), 'ms'),
    );
  } finally {
    agent.destroy();
    await gateway.close();
  }
  return rows;
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  const fixed = {
    [EXCLUSIVE]: [metric('skipped: 100 sessions would need 100 poller threads', 'n/a', '')],
  };
  return runHosts(import.meta.url, SCENARIO, HOSTS, opts, fixed);
}

childMain(import.meta.url, SCENARIO, measure);
