import { ANY_WORKER } from '../backends/workers/workers-backend.js';
import type { Alerts } from '../notify/alerts.js';
import { lostResult } from '../runner/result-record.js';
import { AttemptFiles } from '../storage/attempt-files.js';
import type { Storage } from '../storage/storage.js';
import type { AttemptOutcome, AttemptRecord, RunRecord } from '../store/records.js';
import type { ResultChange } from '../store/run-ledger.js';
import type { Store } from '../store/store.js';
import { LAST_RETRY_MS } from '../store/store-patience.js';
import { decideAttempt, rulesOf, type EndedAttempt } from './attempt-decision.js';

/**
 * The coordinator's duties for runs of pull dispatch, which no single process drives.
 * Whoever holds an attempt's lease reports it, with what `decide` (the one decision of
 * attempt-decision.ts) says; any process may reap attempts whose lease ran out and settle runs whose
 * tasks all ended (`reapExpired`, `settle`). The store applies a result only while its attempt
 * is running and settles a run in one transaction, so two processes doing the same duty at once
 * do it once.
 */
/** A pull worker's lease unless `fanout worker --lease` says otherwise. */
export const DEFAULT_LEASE_MS = 60_000;

export class QueueDuties {
  private readonly runs = new Map<number, RunRecord>();
  private readonly files: AttemptFiles;

  constructor(
    private readonly store: Store,
    private readonly alerts: Alerts,
    private readonly options: {
      /** Where attempt folders are read: a vanished worker's attempt may have left its result record. */
      storage: Storage;
      /** The lease of the workers whose attempts this process may reap (its own, for a worker). */
      leaseMs: number;
    },
  ) {
    this.files = new AttemptFiles(options.storage);
  }

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

  /**
   * Attempts whose worker stopped heartbeating end as their result record says where this process
   * can read it, else as `lost` (per the retry policy); a lost gather is queued again.
   */
  async reapExpired(): Promise<number> {
    // Leases run on the store's clock: just after an outage of the store every lease looks
    // expired, though its worker is alive and retrying its heartbeat. Reap only once live workers
    // had a lease, and a retry, to renew theirs.
    if (this.store.reachableFor() < this.options.leaseMs + LAST_RETRY_MS) return 0;
    const expired = await this.store.expiredAttempts(200);
    for (const gather of expired.gathers) {
      const lost = lostResult(`its worker (${gather.worker ?? 'unknown'}) stopped renewing its lease`);
      // Its inputs are all still there: queue it again, unless its worker reported it meanwhile.
      await this.store.endGather({ runId: gather.runId, attempt: gather.attempt, result: lost, gatherState: 'pending' });
    }
    const vanished = [...expired.tasks, ...expired.gathers].map((attempt) => attempt.worker).filter((worker) => worker !== null);
    await this.store.workersLost([...new Set(vanished)]);
    const byRun = new Map<number, AttemptRecord[]>();
    for (const attempt of expired.tasks) byRun.set(attempt.runId, [...(byRun.get(attempt.runId) ?? []), attempt]);
    for (const [runId, attempts] of byRun) {
      const run = await this.store.getRun(runId);
      if (!run) continue;
      const tasks = new Map((await this.store.listTasks(runId)).map((task) => [task.index, task]));
      const changes: ResultChange[] = [];
      for (const attempt of attempts) {
        const task = tasks.get(attempt.index);
        if (task) changes.push(this.decide(run, { task, attempt: attempt.attempt, result: await this.vanished(run, attempt), interruption: 'none' }));
      }
      const { appliedResults } = await this.store.commit({ results: changes });
      this.alerts.tasksFailed(run, appliedResults, (index) => tasks.get(index)?.name);
      await this.settle(runId);
    }
    return expired.tasks.length + expired.gathers.length;
  }

  /**
   * What an attempt of a vanished worker became. Never started (its worker claimed it ahead and
   * never said it started it): not an attempt of the task at all, so it costs the task nothing.
   * Started, in a folder this process reads and with outputs the launcher commits itself (a
   * shared workdir and outdir): its result record, when the launcher wrote one, so finished work
   * is adopted rather than run again. Otherwise `lost`.
   */
  private async vanished(run: RunRecord, attempt: AttemptRecord): Promise<AttemptOutcome & { notStarted?: boolean }> {
    const worker = `its worker (${attempt.worker ?? 'unknown'})`;
    if (attempt.startedAt === null) return { ...lostResult(`${worker} vanished before starting it`, { notStarted: true }), startedAt: null };
    const { storage } = this.options;
    if (storage.isLocal(attempt.dir) && storage.isLocal(run.spec.outdir)) {
      const record = await this.files.readResultRecord(attempt.dir).catch(() => null);
      if (record) return record;
    }
    return lostResult(`${worker} stopped renewing its lease`);
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
