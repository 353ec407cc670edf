import type { Engine } from '../engine/engine.js';
import type { RunHandle } from '../engine/run-handle.js';
import { isAlive } from '../process-identity.js';
import { FanoutApiError } from '../errors.js';
import type { GatherOutcome, RunRecord, RunState, TaskCounts } from '../store/records.js';
import { taskResults, type TaskResult } from './task-results.js';

/** How often a run that another process drives is looked up in the store. */
const POLL_MS = 500;

/** Where a run stands: one event of `run.progress()`. */
export interface ProgressEvent {
  /** The run's id. */
  run: number;
  /** The job's name. */
  job: string;
  /** `running` until the run ends; the last event has its final state. */
  state: RunState;
  /** Tasks by state: pending, running, succeeded, failed, skipped, cancelled. */
  counts: TaskCounts;
  /** Every task of the run. */
  total: number;
}

/** How a run ended: what `run.wait()` resolves with. */
export interface RunSummary {
  /** The run's id. */
  run: number;
  /** The job's name. */
  job: string;
  /** `succeeded`, `failed` or `cancelled` (`running` only for a workers run whose watch was stopped). */
  state: RunState;
  /** Tasks by state, final. */
  counts: TaskCounts;
  /** The job's gather step, when it has one and it ran: `succeeded`, `failed` or `skipped`. */
  gather: GatherOutcome | null;
}

/**
 * A handle on one run: started by `fo.submit` or `fo.map`, or re-opened by id with `fo.run(id)`.
 * The run's state is in the store, so a handle can be re-opened in another process, any time
 * later, and gathers the same results.
 */
export class FanoutRun {
  /** The run's id: pass it to `fo.run(id)` (or `fanout status <id>`) later. */
  readonly id: number;
  /** The job's name. */
  readonly job: string;
  private driving: RunHandle | null = null;
  private ended: Promise<RunSummary> | null = null;
  private readonly changeWaiters = new Set<() => void>();

  // Private, so that the published types offer no way to make one; `Fanout` makes them with `of`.
  private constructor(
    private readonly engine: Engine,
    run: RunRecord,
    driving: RunHandle | null,
  ) {
    this.id = run.id;
    this.job = run.job;
    if (driving) this.drive(driving);
  }

  /** @internal Handles come from `Fanout`: `submit`, `map` and `run`. */
  static of(engine: Engine, run: RunRecord, driving: RunHandle | null): FanoutRun {
    return new FanoutRun(engine, run, driving);
  }

  /**
   * Progress events until the run ends: one at once, then one whenever the counts change, and a
   * last one with the run's final state. Each call starts its own iteration.
   */
  async *progress(): AsyncGenerator<ProgressEvent, void, undefined> {
    let last = '';
    for (;;) {
      const changed = this.nextChange();
      const event = await this.snapshot();
      const key = JSON.stringify(event);
      if (key !== last) {
        last = key;
        yield event;
      }
      if (event.state !== 'running') return;
      await changed;
    }
  }

  /** Resolves when the run has ended, with its final counts. */
  wait(): Promise<RunSummary> {
    this.ended ??= this.awaitEnd();
    return this.ended;
  }

  /**
   * Every task's result, in task order (item order for `map`), once the run has ended (it waits):
   * state, outputs folder, result record, the function's return value, and why it failed.
   */
  async gather<T = unknown>(): Promise<TaskResult<T>[]> {
    await this.wait();
    return (await taskResults(this.engine, this.engine.files, await this.record())) as TaskResult<T>[];
  }

  /**
   * Stop the run: pending tasks are cancelled, running ones terminated. Resolves once it has
   * ended, with its final counts.
   */
  async cancel(): Promise<RunSummary> {
    if (this.driving && this.driving.interrupt === 'stops') this.driving.stop();
    else {
      const run = await this.record();
      await this.engine.cancel(run);
      // A workers run is settled in the store; the watch ends at its next look.
      this.notifyChange();
    }
    return this.wait();
  }

  /** @internal True while this process drives the run and it has not ended. */
  get isDrivenHere(): boolean {
    return this.driving !== null && this.driving.interrupt === 'stops';
  }

  /** @internal Stop watching a run this process does not drive (a workers run): it goes on. */
  detach(): void {
    if (this.driving?.interrupt === 'detaches') this.driving.stop();
  }

  private drive(handle: RunHandle): void {
    this.driving = handle;
    handle.onProgress(() => this.notifyChange());
    this.ended = handle.done.then(
      (outcome) => {
        this.driving = null;
        this.notifyChange();
        return { run: outcome.run.id, job: outcome.run.job, state: outcome.run.state, counts: outcome.counts, gather: outcome.gather };
      },
      (error: unknown) => {
        this.driving = null;
        this.notifyChange();
        throw error;
      },
    );
    // Whoever awaits it sees the failure; an unobserved one must not crash the process.
    this.ended.catch(() => undefined);
  }

  /** Poll the store until the run ends; a run whose driver died is taken over and driven here. */
  private async awaitEnd(): Promise<RunSummary> {
    for (;;) {
      const run = await this.record();
      if (run.state !== 'running') return summaryOf(run, await this.engine.store.counts(run.id));
      if (run.dispatch === 'pull' || run.coordinator === null || !isAlive(run.coordinator)) {
        this.drive(await this.engine.resume(run));
        return this.ended!;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      this.notifyChange();
    }
  }

  private async snapshot(): Promise<ProgressEvent> {
    if (this.driving) {
      const progress = this.driving.progress();
      return { run: this.id, job: this.job, state: 'running', counts: progress.counts, total: progress.total };
    }
    // Start watching (and taking over a run whose driver died); its failure reaches whoever awaits wait().
    if (this.ended === null) this.wait().catch(() => undefined);
    const run = await this.record();
    const counts = await this.engine.store.counts(run.id);
    const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
    return { run: this.id, job: this.job, state: run.state, counts, total };
  }

  /** Resolves at the next change, or after a poll interval at the latest. */
  private nextChange(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, POLL_MS);
      const waiters = this.changeWaiters;
      function done(): void {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  private notifyChange(): void {
    for (const waiter of [...this.changeWaiters]) waiter();
  }

  private async record(): Promise<RunRecord> {
    const run = await this.engine.store.getRun(this.id);
    if (!run) throw new FanoutApiError('no-such-run', `run ${this.id} is no longer in the store`, 'open the store it was started in');
    return run;
  }
}

function summaryOf(run: RunRecord, counts: TaskCounts): RunSummary {
  const gather = run.gatherState === 'succeeded' || run.gatherState === 'failed' || run.gatherState === 'skipped' ? run.gatherState : null;
  return { run: run.id, job: run.job, state: run.state, counts, gather };
}
