import type { Alerts } from '../notify/alerts.js';
import type { GatherOutcome, RunRecord, TaskCounts } from '../store/records.js';
import type { Storage } from '../storage/storage.js';
import type { Store } from '../store/store.js';
import { DEFAULT_LEASE_MS, QueueDuties } from './queue-duties.js';
import type { Progress, RunDriver, RunHandle, RunOutcome } from './run-handle.js';

const POLL_MS = 1000;

/**
 * Runs of pull dispatch: their attempts wait in the store until pull workers claim them, so no
 * process drives them. This process only watches (and, while it watches, helps with the queue's
 * duties: reaping attempts of vanished workers, settling the run). Stopping detaches: the run
 * goes on.
 */
export class PullDriver implements RunDriver {
  constructor(
    private readonly store: Store,
    private readonly storage: Storage,
    private readonly alerts: Alerts,
    private readonly options: { pollMs?: number } = {},
  ) {}

  async hold(): Promise<void> {
    // No process holds a pull run: whoever holds an attempt's lease reports it.
  }

  async follow(run: RunRecord): Promise<RunHandle> {
    const { store } = this;
    // Workers' leases are theirs to choose; a watcher that saw the store go away assumes the default.
    const duties = new QueueDuties(store, this.alerts, { storage: this.storage, leaseMs: DEFAULT_LEASE_MS });
    const listeners: Array<(progress: Progress) => void> = [];
    const startedAt = Date.now();
    let counts: TaskCounts = await store.counts(run.id);
    const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
    let detached = false;
    let wake: (() => void) | undefined;
    const progress = (): Progress => ({ counts: { ...counts }, total, startedAt });

    const done = (async (): Promise<RunOutcome> => {
      let current = run;
      for (;;) {
        await duties.reapExpired();
        await duties.settle(run.id);
        const [latest, latestCounts] = await Promise.all([store.getRun(run.id), store.counts(run.id)]);
        current = latest ?? current;
        counts = latestCounts;
        listeners.forEach((listener) => listener(progress()));
        if (current.state !== 'running' || detached) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, this.options.pollMs ?? POLL_MS);
        });
      }
      return { run: current, counts, gather: gatherOutcome(current) };
    })();

    return {
      run,
      interrupt: 'detaches',
      progress,
      onProgress: (listener) => listeners.push(listener),
      stop: () => {
        detached = true;
        wake?.();
      },
      done,
    };
  }

  /** Workers see the run cancelled at their next heartbeat and stop its attempts. */
  async cancel(run: RunRecord): Promise<'settled'> {
    const pending = (await this.store.listTasks(run.id, { state: 'pending' })).map((task) => ({ runId: run.id, index: task.index, state: 'cancelled' as const }));
    await this.store.commit({ taskStates: pending, run: { id: run.id, state: 'cancelled', endedAt: Date.now() } });
    return 'settled';
  }

  /** A worker claims it: the gather runs where the outputs can be read. */
  async gather(run: RunRecord): Promise<GatherOutcome> {
    await this.store.commit({ run: { id: run.id, state: 'running', endedAt: null, gatherState: 'pending' } });
    const outcome = await (await this.follow((await this.store.getRun(run.id))!)).done;
    return outcome.gather ?? 'failed';
  }
}

function gatherOutcome(run: RunRecord): GatherOutcome | null {
  const state = run.gatherState;
  return state === 'succeeded' || state === 'failed' || state === 'skipped' ? state : null;
}
