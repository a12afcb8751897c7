import { VigilError } from './errors.js';
import {
  type PollerFault,
  type PollerReport,
  type PollerWork,
  type PullRequest,
  type RegistryPort,
  STOP_WORK,
} from './poller-protocol.js';

export interface ProbeResult {
  readonly runId: number;
  readonly threadId: number;
}

interface Probe {
  readonly id: number;
  readonly resolve: (result: ProbeResult) => void;
  readonly reject: (error: VigilError) => void;
}

interface PendingPull {
  readonly resolve: (work: PollerWork) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

/**
 * The registry's end of one session's poller. It owns the session's poller-facing state (work
 * queue, probes, cursors), so a poller run is disposable: a restarted run resumes from here.
 * Only the current run may call in; calls of a superseded run fail with `ERR_POLLER`.
 */
export class PollerLink {
  readonly sessionId: string;
  #runId = 0;
  #threadId = 0;
  #stopping = false;
  #pull: PendingPull | undefined;
  #probeSeq = 0;
  readonly #probes = new Map<number, Probe>();
  #queuedProbes: number[] = [];
  #inFlightProbes: number[] = [];
  #faults: PollerFault[] = [];

  constructor(sessionId: string) {
    this.sessionId = sessionId;
  }

  get runId(): number {
    return this.#runId;
  }

  get threadId(): number {
    return this.#threadId;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** Opens the port for run `runId`, superseding any earlier run. Work it had not committed is re-sent. */
  openRun(runId: number): RegistryPort {
    this.#endPull(STOP_WORK);
    this.#runId = runId;
    this.#threadId = 0;
    this.#queuedProbes = [...this.#inFlightProbes, ...this.#queuedProbes];
    this.#inFlightProbes = [];
    const check = (): void => {
      if (this.#runId !== runId) {
        throw new VigilError('ERR_POLLER', `poller run ${runId} of session ${this.sessionId} was superseded`);
      }
    };
    return {
      hello: async (info) => {
        check();
        this.#threadId = info.threadId;
        return { sessionId: this.sessionId, runId };
      },
      pull: async (request) => {
        check();
        return this.#takeWork(request);
      },
      commit: async (report) => {
        check();
        this.#commit(report);
      },
    };
  }

  /** Makes the current run's pending (or next) pull answer `stop`. */
  requestStop(): void {
    this.#stopping = true;
    this.#endPull(STOP_WORK);
  }

  /** Resolves once the poller has processed a round trip: proof that it runs, and where. */
  probe(): Promise<ProbeResult> {
    if (this.#stopping) {
      return Promise.reject(new VigilError('ERR_SESSION_CLOSED', `session ${this.sessionId} is closing`));
    }
    const id = ++this.#probeSeq;
    return new Promise<ProbeResult>((resolve, reject) => {
      this.#probes.set(id, { id, resolve, reject });
      this.#queuedProbes.push(id);
      this.#wake();
    });
  }

  injectFault(fault: PollerFault): void {
    this.#faults.push(fault);
    this.#wake();
  }

  /** Settles everything still waiting on this link. Called once the poller has stopped. */
  dispose(): void {
    this.#stopping = true;
    this.#endPull(STOP_WORK);
    const error = new VigilError('ERR_SESSION_CLOSED', `session ${this.sessionId} is closed`);
    for (const probe of this.#probes.values()) probe.reject(error);
    this.#probes.clear();
    this.#queuedProbes = [];
    this.#inFlightProbes = [];
  }

  #hasWork(): boolean {
    return this.#queuedProbes.length > 0 || this.#faults.length > 0;
  }

  #takeWork(request: PullRequest): Promise<PollerWork> {
    if (this.#stopping) return Promise.resolve(STOP_WORK);
    if (this.#hasWork()) return Promise.resolve(this.#drain());
    this.#endPull(STOP_WORK);
    return new Promise<PollerWork>((resolve) => {
      const timer =
        request.waitMs === undefined
          ? undefined
          : setTimeout(() => this.#endPull(this.#drain()), Math.max(0, request.waitMs));
      this.#pull = { resolve, timer };
    });
  }

  #drain(): PollerWork {
    const probes = this.#queuedProbes;
    const faults = this.#faults;
    this.#inFlightProbes.push(...probes);
    this.#queuedProbes = [];
    this.#faults = [];
    return { stop: false, probes, faults };
  }

  #wake(): void {
    if (this.#pull !== undefined && this.#hasWork()) this.#endPull(this.#drain());
  }

  #endPull(work: PollerWork): void {
    const pull = this.#pull;
    if (pull === undefined) return;
    this.#pull = undefined;
    if (pull.timer !== undefined) clearTimeout(pull.timer);
    pull.resolve(work);
  }

  #commit(report: PollerReport): void {
    for (const id of report.probes) {
      const probe = this.#probes.get(id);
      this.#probes.delete(id);
      this.#inFlightProbes = this.#inFlightProbes.filter((p) => p !== id);
      probe?.resolve({ runId: this.#runId, threadId: this.#threadId });
    }
  }
}
