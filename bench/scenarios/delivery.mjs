/**
 * Delivery under failures: N sessions, each with a child printing 1,000 `HIT <i>` lines watched
 * with 'HIT' (no rate limits, one line per notification), plus its completion. `deliver` fails 10%
 * of its calls (deterministic per session; half throw, half reject). Expected notifications are
 * read back from each session's tape (every `watch.match`/`watch.disabled` and the completion of
 * `process.exited`), and a process whose output came up short (outputBytes) is counted as such;
 * lost = expected − acknowledged, duplicated = ids acknowledged more than once, and each session's
 * acknowledged seqs must increase strictly (G9). Run twice: with `deliver` (one call per
 * notification) and with `deliverBatch` (every ready notification per call, the whole call failing
 * 10% of the time), which reports its calls per notification.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { childMain, metric, runHosts } from '../lib/child.mjs';
import { createBenchVigil, EXCLUSIVE, HOSTS } from '../lib/hosts.mjs';
import { round } from '../lib/measure.mjs';

const SCENARIO = 'delivery';
const LINES = 1000;
const FAIL_RATE = 0.1;
/** What `seq -f 'HIT %g' 1000` prints. */
const OUTPUT_BYTES = Array.from({ length: LINES }, (_, i) => `HIT ${i + 1}\n`.length).reduce((a, b) => a + b);
const OPTIONS = {
  watch: {
    cooldownMs: 0,
    lifetimeMaxHits: 1_000_000,
    maxLinesPerMatch: 1,
    breaker: { maxMatches: 1_000_000 },
  },
  delivery: { retry: { initialDelayMs: 1, maxDelayMs: 5 } },
};

/** A deterministic PRNG (mulberry32). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every event of a session's tape, paged with the maximum limit. */
async function readTape(vigil, sessionId) {
  const events = [];
  let after = 0;
  for (;;) {
    const page = await vigil.tape.read(sessionId, { after, limit: 1000 });
    if (page.reset) throw new Error(`tape of ${sessionId} was evicted past ${after}`);
    events.push(...page.events);
    after = page.next;
    if (!page.hasMore) return events;
  }
}

/** @param {string} host @param {{ quick: boolean }} opts */
export async function measure(host, { quick }) {
  return [...(await deliveryRows(host, quick, false)), ...(await deliveryRows(host, quick, true))];
}

/** One run: `batch` opens the sessions with `deliverBatch`, and its rows' labels say so. */
async function deliveryRows(host, quick, batch) {
  const mode = batch ? 'deliverBatch: ' : '';
  const sessions = host === EXCLUSIVE || quick ? 20 : 100;
  const ids = Array.from({ length: sessions }, (_, i) => `delivery-${i}`);
  const { vigil } = createBenchVigil(host, { maxThreads: sessions + 10, options: OPTIONS });
  /** Per session: acknowledged notification ids (with counts) and seqs in acknowledgement order. */
  const acked = new Map(ids.map((id) => [id, { ids: new Map(), seqs: [] }]));
  let calls = 0;
  let injected = 0;
  const rows = [];
  try {
    for (const [index, sessionId] of ids.entries()) {
      const random = prng(index + 1);
      const mine = acked.get(sessionId);
      const deliverAll = (notifications) => {
        calls++;
        const roll = random();
        if (roll < FAIL_RATE) {
          injected++;
          if (roll < FAIL_RATE / 2) throw new Error('injected failure (throw)');
          return Promise.reject(new Error('injected failure (reject)'));
        }
        return Promise.resolve().then(() => {
          for (const notification of notifications) {
            mine.ids.set(notification.id, (mine.ids.get(notification.id) ?? 0) + 1);
            mine.seqs.push(notification.seq);
          }
        });
      };
      await vigil.sessions.open(
        sessionId,
        batch
          ? { deliverBatch: ({ notifications }) => deliverAll(notifications) }
          : { deliver: (notification) => deliverAll([notification]) },
      );
    }
    let exited = 0;
    const off = vigil.on('process:exited', () => {
      exited++;
    });
    const started = performance.now();
    for (const sessionId of ids) {
      vigil.processes.spawn({ sessionId, command: `seq -f 'HIT %g' ${LINES}`, watch: ['HIT'] });
    }
    const deadline = Date.now() + 120_000;
    while (exited < sessions || vigil.stats().outboxDepth > 0) {
      if (Date.now() > deadline) {
        throw new Error(
          `${exited}/${sessions} exited, outbox depth ${vigil.stats().outboxDepth} after 120 s`,
        );
      }
      await sleep(5);
    }
    const wallMs = performance.now() - started;
    off();

    let expectedTotal = 0;
    let ackedTotal = 0;
    let lost = 0;
    let duplicated = 0;
    let unexpected = 0;
    let outOfOrder = 0;
    let cutShort = 0;
    for (const sessionId of ids) {
      const expected = new Set();
      for (const event of await readTape(vigil, sessionId)) {
        if (event.type === 'watch.match' || event.type === 'watch.disabled') {
          expected.add(event.data.notificationId);
        }
        if (event.type === 'process.exited') {
          expected.add(`${event.processId}:completion`);
          if (event.data.outputBytes < OUTPUT_BYTES) cutShort++;
        }
      }
      const mine = acked.get(sessionId);
      expectedTotal += expected.size;
      ackedTotal += mine.ids.size;
      for (const id of expected) if (!mine.ids.has(id)) lost++;
      for (const [id, count] of mine.ids) {
        if (count > 1) duplicated += count - 1;
        if (!expected.has(id)) unexpected++;
      }
      for (let i = 1; i < mine.seqs.length; i++) if (mine.seqs[i] <= mine.seqs[i - 1]) outOfOrder++;
    }
    const fewer = sessions < 100 && !quick ? ' (not 100: one thread each)' : '';
    rows.push(
      metric(
        `${mode}notifications expected (tape), ${sessions} sessions${fewer}`,
        expectedTotal,
        'notifications',
        {
          op: '==',
          value: sessions * (LINES + 1),
        },
      ),
      metric(`${mode}processes whose output was cut short (< ${OUTPUT_BYTES} B)`, cutShort, 'processes', {
        op: '==',
        value: 0,
      }),
      metric(`${mode}lost (expected, never acknowledged)`, lost, 'notifications', { op: '==', value: 0 }),
      metric(`${mode}duplicated (acknowledged more than once)`, duplicated, 'notifications', {
        op: '==',
        value: 0,
      }),
      metric(`${mode}acknowledged but not on the tape`, unexpected, 'notifications', { op: '==', value: 0 }),
      metric(`${mode}acknowledged out of tape order`, outOfOrder, 'notifications', { op: '==', value: 0 }),
      metric(
        `${mode}deliver calls (${injected} failed on purpose, ${round((100 * injected) / calls)}%)`,
        calls,
        'calls',
      ),
      metric(`${mode}deliver calls per acknowledged notification`, round(calls / ackedTotal, 3), 'calls'),
      metric(`${mode}wall time, spawn → all acknowledged`, round(wallMs), 'ms'),
      metric(`${mode}acknowledged notifications/s`, round((ackedTotal * 1000) / wallMs), '/s'),
    );
  } finally {
    await vigil.close();
  }
  return rows;
}

/** @param {{ quick: boolean }} opts */
export function run(opts) {
  return runHosts(import.meta.url, SCENARIO, HOSTS, opts);
}

childMain(import.meta.url, SCENARIO, measure);
