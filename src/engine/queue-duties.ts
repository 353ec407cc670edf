import type { Alerts } from '../notify/alerts.js';
import type { AttemptResult } from '../runner/launcher.js';
import { lostResult } from '../runner/result-record.js';
import type { AttemptRecord, ResultChange, RunRecord, Store, TaskRecord } from '../store/store.js';
import { finalOut } from './home-layout.js';
import { nextStep } from './retry-policy.js';

/**
 * The coordinator's duties for runs of the `workers` backend, which no single process drives.
 * Whoever holds an attempt's lease reports it and applies the retry policy (`reportResult`);
 * any process may reap attempts whose lease ran out and settle runs whose tasks all ended
 * (`reapExpired`, `settle`). The store applies a result only while its attempt is running and
 * settles a run in one transaction, so two processes doing the same duty at once do it once.
 */

/** Workers are not one machine: an escalated oom may ask for more than any worker seen so far. */
const NO_MEMORY_CEILING = Number.MAX_SAFE_INTEGER;

/** What a task becomes after an attempt of it ended with `result`. */
export function queuedResult(run: RunRecord, task: TaskRecord, attempt: number, result: AttemptResult, options: { returned?: boolean } = {}): ResultChange {
  const counted = { attempts: task.attempts - task.retryBase, memory: task.memory, timeMs: task.timeMs };
  let step = nextStep(result.reason, counted, run.spec.retry, NO_MEMORY_CEILING);
  let retryBase = task.retryBase;
  if (options.returned) {
    // A worker handing its task back (SIGTERM, end of its lifetime) is not the task's failure.
    step = { state: 'pending', memory: task.memory, timeMs: task.timeMs };
    retryBase++;
  }
  if (run.state !== 'running' && step.state === 'pending') step = { ...step, state: 'cancelled' };
  return {
    runId: run.id,
    index: task.index,
    attempt,
    result,
    task: { ...step, retryBase },
    cache: result.reason === 'ok' ? { key: task.cacheKey, runId: run.id, index: task.index, attempt, out: finalOut(run.spec.outdir, task.name) } : undefined,
  };
}

export class QueueDuties {
  private readonly runs = new Map<number, RunRecord>();

  constructor(
    private readonly store: Store,
    private readonly alerts: Alerts,
  ) {}

  /** A run's record; its spec never changes, so it is read once. */
  async run(runId: number): Promise<RunRecord> {
    let run = this.runs.get(runId);
    if (!run) {
      run = (await this.store.getRun(runId)) ?? undefined;
      if (!run) throw new Error(`run ${runId} is not in the store`);
      this.runs.set(runId, run);
    }
    return run;
  }

  /** Attempts whose worker stopped heartbeating go back to the queue as `lost` (per the retry policy). */
  async reapExpired(): Promise<number> {
    const expired = await this.store.expiredAttempts(200);
    if (expired.length === 0) return 0;
    const byRun = new Map<number, AttemptRecord[]>();
    for (const attempt of expired) byRun.set(attempt.runId, [...(byRun.get(attempt.runId) ?? []), attempt]);
    for (const [runId, attempts] of byRun) {
      const run = await this.store.getRun(runId);
      if (!run) continue;
      const tasks = new Map((await this.store.listTasks(runId)).map((task) => [task.index, task]));
      const changes: ResultChange[] = [];
      for (const attempt of attempts) {
        const lost = lostResult(`its worker (${attempt.worker ?? 'unknown'}) stopped renewing its lease`);
        if (attempt.index < 0) {
          changes.push({ runId, index: attempt.index, attempt: attempt.attempt, result: lost, task: { state: 'failed', memory: null, timeMs: null, retryBase: 0 } });
          continue;
        }
        const task = tasks.get(attempt.index);
        if (task) changes.push(queuedResult(run, task, attempt.attempt, lost));
      }
      // A lost gather is queued again (its inputs are all still there), unless its worker
      // reported it after all in the meantime.
      const gatherLost = attempts.some((attempt) => attempt.index < 0) && (await this.store.runningAttempts(runId)).some((attempt) => attempt.index < 0);
      const { appliedResults } = await this.store.commit({ results: changes, run: gatherLost ? { id: runId, gatherState: 'pending' } : undefined });
      this.alerts.tasksFailed(run, appliedResults, (index) => tasks.get(index)?.name);
      await this.settle(runId);
    }
    return expired.length;
  }

  /**
   * End a run, or queue its gather, once its tasks have all ended. Only the process whose
   * transaction ended the run alerts on it: the store says which one that was.
   */
  async settle(runId: number): ReturnType<Store['settleRun']> {
    const run = await this.run(runId);
    const settled = await this.store.settleRun(runId, { hasGather: run.spec.gather !== null });
    if (settled === 'succeeded' || settled === 'failed') this.alerts.runEnded(this.store, run, settled);
    return settled;
  }

  /** Results this process committed: alert on the tasks that failed for good among those that applied. */
  reported(applied: ResultChange[], nameOf: (runId: number, index: number) => string | undefined): void {
    const byRun = new Map<number, ResultChange[]>();
    for (const change of applied) byRun.set(change.runId, [...(byRun.get(change.runId) ?? []), change]);
    for (const [runId, changes] of byRun) {
      const run = this.runs.get(runId);
      if (run) this.alerts.tasksFailed(run, changes, (index) => nameOf(runId, index));
    }
  }
}
