import type { AttemptLaunch, Capacity, OrphanAttempt, PushBackend } from '../backends/backend.js';
import type { Alerts } from '../notify/alerts.js';
import type { AttemptResult } from '../runner/launcher.js';
import type { JobSpec } from '../job/job-spec.js';
import type { Template } from '../job/template.js';
import type { ProcessIdentity, RunRecord, TaskCounts, TaskRecord, TaskState } from '../store/records.js';
import type { LaunchChange, ResultChange, StateChanges } from '../store/run-ledger.js';
import type { Store } from '../store/store.js';
import { decideAttempt, rulesOf } from './attempt-decision.js';
import type { Progress } from './run-handle.js';
import { withDiskFullNote } from './disk-full.js';
import { earlierStaging, finalOut, removeFolders, stagingOut, type HomeLayout } from './home-layout.js';
import { ResourceTally } from './resource-tally.js';
import { taskLaunch } from './task-launch.js';

export interface CoordinatorOptions {
  store: Store;
  backend: PushBackend;
  layout: HomeLayout;
  run: RunRecord;
  command: Template;
  capacity: Capacity;
  /** The most attempts running at once (null: as many as fit). */
  concurrency: number | null;
  /** Told of each task that fails for good. */
  alerts: Alerts;
  onProgress?: (progress: Progress) => void;
}

interface Running {
  index: number;
  attempt: number;
  cpus: number;
  memory: number;
  /** Cut off by a coordinator that died: retried without counting against the retry budget. */
  orphan: boolean;
}

/**
 * Drives one run's tasks to the end: launches what fits, applies the retry policy to each
 * result, and commits every change to the store in one transaction per batch, before acting
 * on it (launches are recorded before they are submitted).
 */
export class Coordinator {
  private readonly spec: JobSpec;
  private readonly tasks: TaskRecord[];
  private readonly counts: TaskCounts;
  /** Retries go first so that a run's tail is not waiting on them. */
  private readonly retryQueue: number[] = [];
  private readonly queue: number[] = [];
  private queueHead = 0;
  private readonly running = new Map<number, Running>();
  private readonly finished: Array<{ id: number; result: AttemptResult }> = [];
  private nextId = 1;
  /** What the running attempts ask for in all. */
  private readonly used = new ResourceTally();
  private stopping: 'no' | 'graceful' | 'forced' = 'no';
  private tickScheduled = false;
  /** A tick is committing; another is due once it has. */
  private ticking = false;
  private tickAgain = false;
  private failure: Error | undefined;
  private rejectDone: ((error: unknown) => void) | undefined;
  private readonly startedAt = Date.now();
  private resolveDone: (() => void) | undefined;

  private constructor(
    private readonly options: CoordinatorOptions,
    tasks: TaskRecord[],
    counts: TaskCounts,
  ) {
    this.spec = options.run.spec;
    this.tasks = tasks;
    this.counts = counts;
    for (const task of this.tasks) if (task.state === 'pending') this.queue.push(task.index);
  }

  static async open(options: CoordinatorOptions): Promise<Coordinator> {
    const { store, run } = options;
    return new Coordinator(options, await store.listTasks(run.id), await store.counts(run.id));
  }

  /** Called by the backend for every attempt that ends. */
  readonly onResult = (id: number, result: AttemptResult): void => {
    this.finished.push({ id, result });
    this.scheduleTick();
  };

  /**
   * Attempts earlier coordinators left `running`: adopt those that finished, keep watching those
   * still running under the launcher each was started under (its own, recorded with the attempt:
   * coordinators killed one after another leave attempts under several), retry the rest as `lost`.
   */
  async recover(): Promise<void> {
    const { store, run, backend } = this.options;
    const bySupervisor = new Map<string, { supervisor: ProcessIdentity | null; orphans: OrphanAttempt[] }>();
    for (const attempt of await store.runningAttempts(run.id)) {
      const task = this.tasks[attempt.index]!;
      const id = this.nextId++;
      this.occupy(id, { index: attempt.index, attempt: attempt.attempt, cpus: task.cpus, memory: attempt.memory ?? 0, orphan: true });
      this.setState(task, 'running');
      const key = JSON.stringify(attempt.launcher);
      if (!bySupervisor.has(key)) bySupervisor.set(key, { supervisor: attempt.launcher, orphans: [] });
      bySupervisor.get(key)!.orphans.push({ id, attemptDir: attempt.dir });
    }
    for (const { supervisor, orphans } of bySupervisor.values()) backend.adopt(orphans, supervisor);
  }

  /** Run until every task has ended (or, once stopping, until nothing runs). */
  drive(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
      if (this.failure !== undefined) reject(this.failure);
      this.scheduleTick();
    });
  }

  /** First call: stop launching and terminate running attempts; second: kill them now. */
  stop(): void {
    this.stopping = this.stopping === 'no' ? 'graceful' : 'forced';
    this.options.backend.cancel([...this.running.keys()], { force: this.stopping === 'forced' });
    this.scheduleTick();
  }

  get isStopping(): boolean {
    return this.stopping !== 'no';
  }

  progress(): Progress {
    return { counts: { ...this.counts }, total: this.tasks.length, startedAt: this.startedAt };
  }

  private scheduleTick(): void {
    if (this.tickScheduled) return;
    this.tickScheduled = true;
    // A microtask, not a turn of the event loop: every result that arrived in one read is
    // already queued, and the next launches go out without waiting for other I/O.
    queueMicrotask(this.tick);
  }

  /** Ticks never overlap: a commit must be in the store before the next batch is decided. */
  private readonly tick = (): void => {
    this.tickScheduled = false;
    if (this.ticking) {
      this.tickAgain = true;
      return;
    }
    this.ticking = true;
    this.step()
      .catch((error: unknown) => {
        // The store failed: nothing more can be recorded, so nothing more may be launched.
        this.failure = error instanceof Error ? error : new Error(String(error));
        this.rejectDone?.(error);
      })
      .finally(() => {
        this.ticking = false;
        if (this.tickAgain && this.failure === undefined) {
          this.tickAgain = false;
          this.scheduleTick();
        }
      });
  };

  private async step(): Promise<void> {
    const results = this.takeResults();
    const taskStates = this.stopping !== 'no' ? this.cancelPending() : [];
    const launches = this.stopping === 'no' ? this.pickLaunches() : [];
    if (results.length || launches.length || taskStates.length) {
      const { appliedResults } = await this.options.store.commit({ results, launches: launches.map((l) => l.change), taskStates });
      if (appliedResults.length) this.options.alerts.tasksFailed(this.options.run, appliedResults, (index) => this.tasks[index]?.name);
      if (launches.length) this.options.backend.submit(launches.map((l) => l.launch));
      this.options.onProgress?.(this.progress());
    }
    if (this.running.size === 0 && (this.stopping !== 'no' || !this.hasQueued())) this.resolveDone?.();
  }

  private takeResults(): ResultChange[] {
    const changes: ResultChange[] = [];
    for (const { id, result } of this.finished.splice(0)) {
      const running = this.running.get(id);
      if (!running) continue;
      this.release(id, running);
      const task = this.tasks[running.index]!;
      const { layout, run } = this.options;
      const places = { attemptDir: layout.attemptDir(run, task.index, running.attempt), stagingOut: stagingOut(this.spec.outdir, run.id, task.index, running.attempt) };
      const change = decideAttempt(
        { task, attempt: running.attempt, result: withDiskFullNote(result, places), interruption: running.orphan ? 'supervisor-lost' : 'none' },
        rulesOf(this.options.run, { stopping: this.stopping !== 'no', memoryCeiling: this.options.capacity.memory }),
      );
      task.memory = change.task.memory;
      task.timeMs = change.task.timeMs;
      task.retryBase = change.task.retryBase;
      task.platformFailures = change.task.platformFailures;
      task.reason = result.reason;
      task.exitCode = result.exitCode;
      task.peakMemory = result.peakMemory;
      this.setState(task, change.task.state);
      if (change.task.state === 'pending') this.retryQueue.push(task.index);
      changes.push(change);
    }
    return changes;
  }

  private pickLaunches(): Array<{ change: LaunchChange; launch: AttemptLaunch }> {
    const picked: Array<{ change: LaunchChange; launch: AttemptLaunch }> = [];
    const limit = this.options.concurrency ?? Number.POSITIVE_INFINITY;
    let supervisor: ProcessIdentity | null | undefined;
    while (this.running.size < limit && this.hasQueued()) {
      const index = this.takeFitting();
      if (index === undefined) break;
      if (supervisor === undefined) supervisor = this.options.backend.supervisor();
      picked.push(this.launch(this.tasks[index]!, supervisor));
    }
    return picked;
  }

  /** The next queued task that fits in what is free; ones that do not fit wait their turn. */
  private takeFitting(): number | undefined {
    if (this.retryQueue.length > 0) {
      const found = this.retryQueue.findIndex((index) => this.fits(this.tasks[index]!));
      return found < 0 ? undefined : this.retryQueue.splice(found, 1)[0];
    }
    const index = this.queue[this.queueHead];
    if (index === undefined || !this.fits(this.tasks[index]!)) return undefined;
    this.queueHead++;
    return index;
  }

  private fits(task: TaskRecord): boolean {
    const { capacity } = this.options;
    return !capacity.shared || this.used.fits(task, { cpus: capacity.cpus, memory: capacity.memory });
  }

  private hasQueued(): boolean {
    return this.retryQueue.length > 0 || this.queueHead < this.queue.length;
  }

  private launch(task: TaskRecord, supervisor: ProcessIdentity | null): { change: LaunchChange; launch: AttemptLaunch } {
    const { run, layout } = this.options;
    const attempt = task.attempts + 1;
    task.attempts = attempt;
    const id = this.nextId++;
    const dir = layout.attemptDir(run, task.index, attempt);
    const staging = stagingOut(this.spec.outdir, run.id, task.index, attempt);
    removeFolders(earlierStaging(this.spec.outdir, run.id, task.index, attempt));
    this.occupy(id, { index: task.index, attempt, cpus: task.cpus, memory: task.memory ?? 0, orphan: false });
    this.setState(task, 'running');
    return {
      change: {
        runId: run.id,
        index: task.index,
        attempt,
        dir,
        cpus: task.cpus,
        memory: task.memory,
        timeMs: task.timeMs,
        launchedAt: Date.now(),
        launcher: supervisor,
      },
      launch: taskLaunch(
        this.spec,
        this.options.command,
        { id, runId: run.id, task, attempt },
        {
          attemptDir: dir,
          stagingOut: staging,
          finalOut: finalOut(this.spec.outdir, task.name),
        },
      ),
    };
  }

  private cancelPending(): NonNullable<StateChanges['taskStates']> {
    const cancelled: Array<{ runId: number; index: number; state: TaskState }> = [];
    const take = (index: number) => {
      const task = this.tasks[index]!;
      if (task.state !== 'pending') return;
      this.setState(task, 'cancelled');
      cancelled.push({ runId: this.options.run.id, index, state: 'cancelled' });
    };
    for (const index of this.retryQueue.splice(0)) take(index);
    for (; this.queueHead < this.queue.length; this.queueHead++) take(this.queue[this.queueHead]!);
    return cancelled;
  }

  private occupy(id: number, running: Running): void {
    this.running.set(id, running);
    this.used.add(running);
  }

  private release(id: number, running: Running): void {
    this.running.delete(id);
    this.used.remove(running);
  }

  private setState(task: TaskRecord, state: TaskState): void {
    this.counts[task.state]--;
    this.counts[state]++;
    task.state = state;
  }
}
