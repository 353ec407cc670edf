import type { AttemptReason, JobSpec } from '../job/job-spec.js';
import type { TaskPage, TaskPageQuery } from './task-page.js';

/**
 * Durable state: runs, their tasks, each task's attempts, the cache of succeeded work, and the
 * pull workers of the `workers` backend with their leases. The contract speaks in domain terms;
 * each implementation (SQLite, PostgreSQL) owns its connection and passes the same conformance
 * suite (test/store-conformance.ts). Every change the engine makes goes through `commit`, one
 * transaction per batch, written before it is acted on.
 */

export type RunState = 'running' | 'succeeded' | 'failed' | 'cancelled';
export type TaskState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';
export type GatherState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

export const TASK_STATES: readonly TaskState[] = ['pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'];

/** The index an attempt of the gather step is stored under. */
export const GATHER_INDEX = -1;

/** Which process drives a run, so a second one can tell whether it is still alive. */
export interface ProcessIdentity {
  pid: number;
  host: string;
  /** Distinguishes a live process from a later one that reused its pid. */
  startedAt: string | null;
}

export interface RunRecord {
  id: number;
  job: string;
  jobFile: string;
  spec: JobSpec;
  backend: string;
  state: RunState;
  createdAt: number;
  endedAt: number | null;
  /** Identifies the planned tasks; a resume in place needs the same plan. */
  planKey: string;
  coordinator: ProcessIdentity | null;
  /** The process that supervises this run's attempts on this machine (local backend). */
  launcher: ProcessIdentity | null;
  gatherState: GatherState | null;
}

export interface NewTask {
  index: number;
  name: string;
  vars: Record<string, string>;
  cacheKey: string;
  state: 'pending' | 'skipped';
  cpus: number;
  memory: number | null;
  timeMs: number | null;
}

export interface TaskRecord extends Omit<NewTask, 'state'> {
  state: TaskState;
  attempts: number;
  /** Attempts that do not count against the retry budget (before a `retry`, or cut off by a crash). */
  retryBase: number;
  reason: AttemptReason | null;
  exitCode: number | null;
  peakMemory: number | null;
  durationMs: number | null;
}

/** How an attempt ended: its result record, as the store keeps it. */
export interface AttemptOutcome {
  reason: AttemptReason;
  exitCode: number | null;
  signal: string | null;
  startedAt: number | null;
  endedAt: number | null;
  peakMemory: number | null;
  cpuMs: number | null;
  host: string | null;
  error?: string | null;
}

/** An attempt as recorded: launched, and once it is `done`, its outcome (null fields until then). */
export interface AttemptRecord extends Omit<AttemptOutcome, 'reason' | 'error'> {
  runId: number;
  index: number;
  attempt: number;
  state: 'running' | 'done';
  dir: string;
  memory: number | null;
  timeMs: number | null;
  launchedAt: number;
  reason: AttemptReason | null;
  error: string | null;
  /** The pull worker that claimed it (`workers` backend), else null. */
  worker: string | null;
}

export interface AttemptSpan {
  index: number;
  launchedAt: number;
  startedAt: number | null;
  /** Null while it runs. */
  endedAt: number | null;
  reason: AttemptReason | null;
  /** Bytes asked for, and the most it used. */
  memory: number | null;
  peakMemory: number | null;
}

export interface CacheEntry {
  key: string;
  runId: number;
  index: number;
  attempt: number;
  out: string;
}

export type TaskCounts = Record<TaskState, number>;

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
}

/** An attempt that ended, and what its task becomes. */
export interface ResultChange {
  runId: number;
  index: number;
  attempt: number;
  result: AttemptOutcome;
  /** The task's next state, with the resources its next attempt asks for when it is retried. */
  task: { state: TaskState; memory: number | null; timeMs: number | null; retryBase: number };
  /** Set when the attempt succeeded: its output is done work the cache remembers. */
  cache?: CacheEntry;
}

/** One batch of changes, committed in one transaction. A result is applied only while its
 * attempt is still `running`: a result for an attempt already ended (reported twice, or
 * reaped as `lost` after its worker's lease expired) is dropped with its task change and cache entry. */
export interface StateChanges {
  launches?: LaunchChange[];
  results?: ResultChange[];
  /** Tasks whose state changes without an attempt ending (cancelling pending tasks, retrying). */
  taskStates?: Array<{ runId: number; index: number; state: TaskState; resetRetries?: boolean }>;
  run?: { id: number; state?: RunState; endedAt?: number | null; gatherState?: GatherState | null };
}

/** What a commit did that its caller cannot know beforehand. */
export interface CommitOutcome {
  /** The results of `changes.results` that applied, the same objects, in order. */
  appliedResults: ResultChange[];
}

export interface Store {
  /**
   * A short stable tag of this store. Several stores may share one workdir, so a run's work
   * folder there carries it. SQLite: derived from the store's folder (the fanout home).
   * PostgreSQL: derived from an id the store draws once when it is created.
   */
  readonly id: string;
  /**
   * Record a run and its planned tasks, unless a live coordinator (checked with `isAlive`) is
   * running the same job: then nothing is written and that coordinator is returned.
   */
  createRun(run: {
    job: string;
    jobFile: string;
    spec: JobSpec;
    backend: string;
    planKey: string;
    tasks: NewTask[];
    /** Null for a run of the `workers` backend: no process has to stay alive for it. */
    coordinator: ProcessIdentity | null;
  }, isAlive: (holder: ProcessIdentity) => boolean): Promise<{ run: RunRecord } | { heldBy: ProcessIdentity }>;
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

  getRun(id: number): Promise<RunRecord | null>;
  /** Newest first. */
  listRuns(options?: { job?: string; limit?: number }): Promise<RunRecord[]>;
  counts(runId: number): Promise<TaskCounts>;
  listTasks(runId: number, options?: { state?: TaskState }): Promise<TaskRecord[]>;
  /** One page of a run's tasks, filtered and sorted by the store (the dashboard's table at 100,000 tasks). */
  pageTasks(runId: number, query: TaskPageQuery): Promise<TaskPage>;
  getTask(runId: number, name: string): Promise<TaskRecord | null>;
  attempts(runId: number, index: number): Promise<AttemptRecord[]>;
  runningAttempts(runId: number): Promise<AttemptRecord[]>;
  /** When each task attempt of a run (not the gather's) was launched, started and ended, in no set order: the dashboard's plots. */
  attemptSpans(runId: number): Promise<AttemptSpan[]>;
  /** The cache entries among `keys` (succeeded work from any run). */
  lookupCache(keys: string[]): Promise<Map<string, CacheEntry>>;

  // The queue of the `workers` backend: pull workers claim pending tasks of its runs.

  registerWorker(worker: NewWorker): Promise<void>;
  /** Workers newest first, with the attempts each holds; stopped ones only with `all`. */
  listWorkers(options?: { all?: boolean }): Promise<WorkerRecord[]>;
  /** The worker stopped cleanly; it holds no attempts any more. */
  retireWorker(workerId: string): Promise<void>;
  /**
   * Claim work for a worker: first the gather of a run whose tasks all succeeded (gather state
   * `pending`), then pending tasks of running `workers` runs, oldest run first, that fit in what
   * the worker has free. Each claimed attempt is recorded (as a launch would be) with a lease
   * held by the worker until `leaseMs` from now. Two workers never claim the same task.
   */
  claim(request: ClaimRequest): Promise<ClaimedAttempt[]>;
  /**
   * Extend the leases of the attempts the worker holds (`holding`), and note its heartbeat.
   * Returns those of them it must stop: their run is no longer running (cancelled), or they are
   * no longer running under this worker (their lease ran out and they were reaped).
   * Leases are measured by the store's clock (PostgreSQL: the server's), not the worker's.
   */
  heartbeat(workerId: string, holding: AttemptKey[], leaseMs: number): Promise<AttemptKey[]>;
  /** Running attempts whose lease ran out (their worker vanished), oldest first, at most `limit`. */
  expiredAttempts(limit: number): Promise<AttemptRecord[]>;
  /**
   * End a `workers` run whose tasks have all ended, in one transaction: queue its gather (gather
   * state `pending`) when it has one that has not run and every task succeeded; otherwise set
   * the run `succeeded` or `failed`. Nothing happens while a task is pending or running, while
   * the gather is queued or running, or when the run is not running. Returns what it did.
   */
  settleRun(runId: number, options: { hasGather: boolean }): Promise<'gather-queued' | 'succeeded' | 'failed' | null>;

  close(): Promise<void>;
}

export interface AttemptKey {
  runId: number;
  index: number;
  attempt: number;
}

export interface NewWorker {
  /** Unique: host, pid and a random part. */
  id: string;
  host: string;
  pid: number;
  cpus: number;
  memory: number;
  /** What started it, e.g. `slurm job 1234` for `fanout workers start`; null when started by hand. */
  launchedBy: string | null;
}

export interface WorkerRecord extends NewWorker {
  state: 'running' | 'stopped';
  startedAt: number;
  heartbeatAt: number;
  /** Attempts it holds now. */
  holding: number;
}

export interface ClaimRequest {
  workerId: string;
  /** What the worker has free: a task is claimed only if it fits (its memory null counts as 0). */
  cpus: number;
  memory: number;
  /** The most attempts to claim at once. */
  limit: number;
  /**
   * The most one task may ask for: the worker's whole size. Defaults to `cpus` and `memory`; a
   * worker that claims ahead (more in all than it has free) sets it so no task is too big for it.
   */
  perTask?: { cpus: number; memory: number };
  leaseMs: number;
  /** The folder a claimed attempt gets (recorded as the attempt's `dir`); index GATHER_INDEX for the gather. */
  attemptDir: (run: { id: number; spec: JobSpec }, index: number, attempt: number) => string;
}

/** An attempt a worker now holds. The task is as it is after the claim (its attempts include this one). */
export type ClaimedAttempt =
  | { kind: 'task'; runId: number; task: TaskRecord; attempt: number; dir: string }
  | { kind: 'gather'; runId: number; attempt: number; dir: string };
