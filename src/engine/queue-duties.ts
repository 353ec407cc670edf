import { ANY_WORKER } from '../backends/workers/workers-backend.js';
import type { Alerts } from '../notify/alerts.js';
import { lostResult } from '../runner/result-record.js';
import type { AttemptRecord, RunRecord } from '../store/records.js';
import type { ResultChange } from '../store/run-ledger.js';
import type { Store } from '../store/store.js';
import { decideAttempt, rulesOf, type EndedAttempt } from './attempt-decision.js';

/**
 * The coordinator's duties for runs of pull dispatch, which no single process drives.
 * Whoever holds an attempt's lease reports it, with what `decide` (the one decision of
 * attempt-decision.ts) says; any process may reap attempts whose lease ran out and settle runs whose
 * tasks all ended (`reapExpired`, `settle`). The store applies a result only while its attempt
 * is running and settles a run in one transaction, so two processes doing the same duty at once
 * do it once.
 */
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

  /**
   * What a task of a pull run becomes after an attempt of it ended. The run's state is read as
   * the caller last saw it: a cancelled run retries nothing.
   */
  decide(run: RunRecord, ended: EndedAttempt): ResultChange {
    // Workers are not one machine: an escalated oom may ask for more than any worker seen so far.
    return decideAttempt(ended, rulesOf(run, { stopping: run.state !== 'running', memoryCeiling: ANY_WORKER.memory }));
  }

  /** Attempts whose worker stopped heartbeating go back to the queue as `lost` (per the retry policy); a lost gather is queued again. */
  async reapExpired(): Promise<number> {
    const expired = await this.store.expiredAttempts(200);
    for (const gather of expired.gathers) {
      const lost = lostResult(`its worker (${gather.worker ?? 'unknown'}) stopped renewing its lease`);
      // Its inputs are all still there: queue it again, unless its worker reported it meanwhile.
      await this.store.endGather({ runId: gather.runId, attempt: gather.attempt, result: lost, gatherState: 'pending' });
    }
    const byRun = new Map<number, AttemptRecord[]>();
    for (const attempt of expired.tasks) byRun.set(attempt.runId, [...(byRun.get(attempt.runId) ?? []), attempt]);
    for (const [runId, attempts] of byRun) {
      const run = await this.store.getRun(runId);
      if (!run) continue;
      const tasks = new Map((await this.store.listTasks(runId)).map((task) => [task.index, task]));
      const changes: ResultChange[] = [];
      for (const attempt of attempts) {
        const task = tasks.get(attempt.index);
        const result = lostResult(`its worker (${attempt.worker ?? 'unknown'}) stopped renewing its lease`);
        if (task) changes.push(this.decide(run, { task, attempt: attempt.attempt, result, interruption: 'none' }));
      }
      const { appliedResults } = await this.store.commit({ results: changes });
      this.alerts.tasksFailed(run, appliedResults, (index) => tasks.get(index)?.name);
      await this.settle(runId);
    }
    return expired.tasks.length + expired.gathers.length;
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
