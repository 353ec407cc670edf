import type { JobSpec } from '../job/job-spec.js';
import type { AttemptOutcome, CacheEntry, Dispatch, GatherAttemptRecord, GatherState, NewTask, ProcessIdentity, RunRecord, RunState, TaskState } from './records.js';

/**
 * The run's ledger: every change to a run, its tasks, their attempts and its gather, each
 * written before it is acted on. A batch of changes is one transaction.
 */
export interface RunLedger {
  /**
   * Record a run and its planned tasks, unless a live coordinator (checked with `isAlive`) is
   * running the same job: then nothing is written and that coordinator is returned.
   */
  createRun(run: NewRun, isAlive: (holder: ProcessIdentity) => boolean): Promise<{ run: RunRecord } | { heldBy: ProcessIdentity }>;
  /**
   * Make `coordinator` the run's coordinator unless another live one holds it (checked with
   * `isAlive`, atomically). Returns the coordinator that holds it instead, or null on success.
   */
  claimRun(runId: number, coordinator: ProcessIdentity, isAlive: (holder: ProcessIdentity) => boolean): Promise<ProcessIdentity | null>;
  releaseRun(runId: number, coordinator: ProcessIdentity): Promise<void>;
  setLauncher(runId: number, launcher: ProcessIdentity | null): Promise<void>;

  /**
   * Apply a batch in one transaction. Returns the results that applied: those whose attempt was
   * still running. A process that acts once per ended attempt (an alert that a task failed for
   * good) acts on these only, so two processes reporting the same attempt act once.
   */
  commit(changes: StateChanges): Promise<CommitOutcome>;

  /**
   * Start the run's next gather attempt (numbered after its earlier ones) and set its gather
   * state `running`, unless a gather attempt of the run is running already: only one gather of
   * a run runs at a time, whoever starts it. Returns the new attempt, or null when one runs.
   */
  startGather(runId: number, start: GatherStart): Promise<GatherAttemptRecord | null>;
  /**
   * Record how a gather attempt ended and set the run's gather state: `succeeded`, `failed`, or
   * `pending` (queued again: its worker vanished or handed it back). Applies only while the
   * attempt is running; returns whether it applied. `cacheKey` is kept when it succeeded.
   */
  endGather(end: GatherEnd): Promise<boolean>;
}

export interface NewRun {
  job: string;
  jobFile: string;
  spec: JobSpec;
  backend: string;
  dispatch: Dispatch;
  planKey: string;
  tasks: NewTask[];
  /** Null for a run of pull dispatch: no process has to stay alive for it. */
  coordinator: ProcessIdentity | null;
}

/** A launch about to happen: the attempt row, and the task moving to `running`. */
export interface LaunchChange {
  runId: number;
  index: number;
  attempt: number;
  dir: string;
  cpus: number;
  memory: number | null;
  timeMs: number | null;
  launchedAt: number;
  /** The launcher process that will supervise it, when one of ours does (absent: none). */
  launcher?: ProcessIdentity | null;
}

export interface GatherStart {
  dir: (attempt: number) => string;
  launchedAt: number;
  /** The launcher process that will supervise it, when one of ours does (absent: none). */
  launcher?: ProcessIdentity | null;
}

/** What a task becomes when one of its attempts ended. */
export interface TaskChange {
  state: TaskState;
  /** What its next attempt asks for, when it is retried. */
  memory: number | null;
  timeMs: number | null;
  retryBase: number;
  platformFailures: number;
}

/** An attempt that ended, and what its task becomes. */
export interface ResultChange {
  runId: number;
  index: number;
  attempt: number;
  result: AttemptOutcome;
  task: TaskChange;
  /** Set when the attempt succeeded: its output is done work the cache remembers. */
  cache?: CacheEntry;
}

/**
 * One batch of changes, committed in one transaction. A result is applied only while its
 * attempt is still `running`: a result for an attempt already ended (reported twice, or
 * reaped as `lost` after its worker's lease expired) is dropped with its task change and cache entry.
 */
export interface StateChanges {
  launches?: LaunchChange[];
  results?: ResultChange[];
  /** Tasks whose state changes without an attempt ending (cancelling pending tasks, retrying; `resetRetries` gives back both retry budgets). */
  taskStates?: Array<{ runId: number; index: number; state: TaskState; resetRetries?: boolean }>;
  run?: { id: number; state?: RunState; endedAt?: number | null; gatherState?: GatherState | null };
}

/** What a commit did that its caller cannot know beforehand. */
export interface CommitOutcome {
  /** The results of `changes.results` that applied, the same objects, in order. */
  appliedResults: ResultChange[];
}

export interface GatherEnd {
  runId: number;
  attempt: number;
  result: AttemptOutcome;
  gatherState: Extract<GatherState, 'succeeded' | 'failed' | 'pending'>;
  /** Set when it succeeded: the same gather over the same task results is then done work. */
  cacheKey?: string;
}
