import type { Alerts } from '../notify/alerts.js';
import type { RunRecord, Store, TaskCounts } from '../store/store.js';
import type { Progress } from './coordinator.js';
import type { RunHandle, RunOutcome } from './engine.js';
import type { GatherOutcome } from './gather.js';
import { QueueDuties } from './queue-duties.js';

const POLL_MS = 1000;

/**
 * Follow a run of the `workers` backend from the store: its tasks are run by pull workers, so
 * this process only watches (and, while it watches, helps with the queue's duties: reaping
 * attempts of vanished workers, settling the run). Stopping detaches: the run goes on.
 */
export async function watchQueuedRun(store: Store, run: RunRecord, alerts: Alerts, options: { pollMs?: number } = {}): Promise<RunHandle> {
  const duties = new QueueDuties(store, alerts);
  const listeners: Array<(progress: Progress) => void> = [];
  const startedAt = Date.now();
  let counts: TaskCounts = await store.counts(run.id);
  let total = Object.values(counts).reduce((sum, n) => sum + n, 0);
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
        setTimeout(resolve, options.pollMs ?? POLL_MS);
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

function gatherOutcome(run: RunRecord): GatherOutcome | null {
  const state = run.gatherState;
  return state === 'succeeded' || state === 'failed' || state === 'skipped' ? state : null;
}
