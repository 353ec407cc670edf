import { dirname, join } from 'node:path';
import { readdirSync, rmSync } from 'node:fs';
import type { PushBackend } from '../backends/backend.js';
import { UserError } from '../errors.js';
import type { JobSpec } from '../job/job-spec.js';
import { parseTemplate } from '../job/template.js';
import type { Alerts } from '../notify/alerts.js';
import { isAlive, type ProcessIdentity } from '../process-identity.js';
import type { AttemptResult } from '../runner/launcher.js';
import type { GatherOutcome, RunRecord, RunState } from '../store/records.js';
import type { Storage } from '../storage/storage.js';
import type { Store } from '../store/store.js';
import { Coordinator } from './coordinator.js';
import { GATHER_ATTEMPT_ID, gatherBackendSpec, runGather, type GatherOptions } from './gather.js';
import { stagingOut, type HomeLayout, type RunPlace } from './home-layout.js';
import type { Progress, RunDriver, RunHandle, RunOutcome } from './run-handle.js';

/**
 * Runs of push dispatch (local processes, SLURM, Grid Engine): this process becomes the run's
 * coordinator, submits its attempts to the backend, applies the one decision of
 * attempt-decision.ts to each result, and runs the gather. Only one live coordinator holds a run.
 */
export class PushDriver implements RunDriver {
  constructor(
    private readonly store: Store,
    private readonly storage: Storage,
    private readonly layout: HomeLayout,
    private readonly alerts: Alerts,
    private readonly me: ProcessIdentity,
    private readonly openBackend: (spec: JobSpec, run: RunPlace) => Promise<PushBackend>,
  ) {}

  async hold(run: RunRecord): Promise<void> {
    const holder = await this.store.claimRun(run.id, this.me, isAlive);
    if (holder) throw alreadyRunning(run.job, holder);
  }

  async follow(claimed: RunRecord, options: { concurrency?: number; stopAtOnce?: boolean } = {}): Promise<RunHandle> {
    const { store, layout } = this;
    const backend = await this.openBackend(claimed.spec, claimed);
    const listeners: Array<(progress: Progress) => void> = [];
    const coordinator = await Coordinator.open({
      store,
      backend,
      layout,
      run: claimed,
      command: parseTemplate(claimed.spec.command),
      capacity: backend.capacity(),
      concurrency: options.concurrency ?? claimed.spec.concurrency ?? backend.defaultConcurrency(),
      alerts: this.alerts,
      onProgress: (progress) => listeners.forEach((listener) => listener(progress)),
    });
    const waiter = new ResultWaiter();
    const launcher = await backend.start((id, result) => (id === GATHER_ATTEMPT_ID ? waiter.deliver(id, result) : coordinator.onResult(id, result)));
    await store.setLauncher(claimed.id, launcher);
    await coordinator.recover();
    // Stopping the run stops its gather too, an adopted one included.
    const gatherStop = new AbortController();
    const stop = () => {
      coordinator.stop();
      gatherStop.abort();
    };
    if (options.stopAtOnce) stop();

    const done = (async (): Promise<RunOutcome> => {
      try {
        await coordinator.drive();
        await removeReplacedOutputs(store, claimed);
        const counts = coordinator.progress().counts;
        const allDone = counts.succeeded + counts.skipped === coordinator.progress().total;
        // Run even when not starting one: a gather an earlier coordinator left running is seen to its end.
        const gather = await this.runGatherOf(claimed, backend, waiter, { force: false, start: allDone && !coordinator.isStopping, signal: gatherStop.signal });
        const state: RunState = coordinator.isStopping ? 'cancelled' : allDone && gather !== 'failed' ? 'succeeded' : 'failed';
        await store.commit({ run: { id: claimed.id, state, endedAt: Date.now() } });
        // This process holds the run, so its end is committed once, here; the alert follows it.
        this.alerts.runEnded(store, claimed, state);
        return { run: (await store.getRun(claimed.id))!, counts: await store.counts(claimed.id), gather };
      } finally {
        await backend.close();
        await store.setLauncher(claimed.id, null);
        await store.releaseRun(claimed.id, this.me);
      }
    })();

    return {
      run: claimed,
      interrupt: 'stops',
      progress: () => coordinator.progress(),
      onProgress: (listener) => listeners.push(listener),
      stop,
      done,
    };
  }

  /** Through its live coordinator, or by settling it here when none is left. */
  async cancel(run: RunRecord): Promise<'signalled' | 'settled'> {
    if (run.coordinator && isAlive(run.coordinator) && run.coordinator.pid !== process.pid) {
      process.kill(run.coordinator.pid, 'SIGTERM');
      return 'signalled';
    }
    await this.hold(run);
    await (
      await this.follow(run, { stopAtOnce: true })
    ).done;
    return 'settled';
  }

  async gather(run: RunRecord): Promise<GatherOutcome> {
    await this.hold(run);
    try {
      return (await this.runGatherOf(run, null, new ResultWaiter(), { force: true, start: true })) ?? 'skipped';
    } finally {
      await this.store.releaseRun(run.id, this.me);
    }
  }

  /**
   * Run the run's gather (or see an earlier one to its end) where the job says (`gather_on`):
   * through `tasksBackend` when that is where, else on a backend opened for it. Null when the job
   * has no gather, or nothing was to be started and none was running.
   */
  private async runGatherOf(run: RunRecord, tasksBackend: PushBackend | null, waiter: ResultWaiter, options: GatherOptions): Promise<GatherOutcome | null> {
    if (run.spec.gather === null) return null;
    if (!options.start && !(await this.store.gatherAttempts(run.id)).some((attempt) => attempt.state === 'running')) return null;
    const spec = gatherBackendSpec(run.spec);
    const own = tasksBackend === null || spec !== run.spec;
    const backend = own ? await this.openBackend(spec, run) : tasksBackend;
    try {
      if (own) await backend.start(waiter.deliver);
      return await runGather({ store: this.store, storage: this.storage, backend, layout: this.layout, run, awaitResult: waiter.wait }, options);
    } finally {
      if (own) await backend.close();
    }
  }
}

export function alreadyRunning(job: string, holder: ProcessIdentity): UserError {
  return new UserError(
    `job ${job} is already running under another fanout (pid ${holder.pid} on ${holder.host})`,
    'wait for it to finish, or stop it with `fanout cancel`',
  );
}

/**
 * A commit that replaced an earlier output swapped the old one into the attempt's staging
 * folder. Clear those once per drive, off the scheduling path, with what attempts recorded
 * `lost` left (half an output, nothing to inspect) and what a later attempt supersedes. The
 * staging folder of a task's last attempt, failed, stays for inspection.
 */
async function removeReplacedOutputs(store: Store, run: RunRecord): Promise<void> {
  const staging = dirname(stagingOut(run.spec.outdir, run.id, 0, 1));
  let entries: string[];
  try {
    entries = readdirSync(staging);
  } catch {
    return;
  }
  if (entries.length === 0) return;
  const tasks = new Map((await store.listTasks(run.id)).map((task) => [task.index, task]));
  for (const entry of entries) {
    const [runId, index, attempt] = entry.split('.').map(Number);
    const task = runId === run.id ? tasks.get(index!) : undefined;
    if (task === undefined || task.state === 'running' || task.state === 'pending') continue;
    const last = task.attempts === attempt;
    if (!last || task.state === 'succeeded' || task.reason === 'lost') rmSync(join(staging, entry), { recursive: true, force: true });
  }
}

/** Hands one attempt's result to whoever awaits it. */
class ResultWaiter {
  private readonly waiting = new Map<number, (result: AttemptResult) => void>();
  private readonly arrived = new Map<number, AttemptResult>();

  readonly deliver = (id: number, result: AttemptResult): void => {
    const resolve = this.waiting.get(id);
    if (resolve) {
      this.waiting.delete(id);
      resolve(result);
    } else this.arrived.set(id, result);
  };

  readonly wait = (id: number): Promise<AttemptResult> => {
    const early = this.arrived.get(id);
    if (early) {
      this.arrived.delete(id);
      return Promise.resolve(early);
    }
    return new Promise((resolve) => this.waiting.set(id, resolve));
  };
}
