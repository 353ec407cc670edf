import type { AttemptReason, JobSpec } from '../spec/job-spec.js';

/**
 * Durable state: runs, their tasks, each task's attempts, and the cache of succeeded work.
 * The contract speaks in domain terms; each implementation owns its connection. Every change
 * the engine makes goes through `commit`, one transaction per batch, written before it is acted on.
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

/** One batch of changes, committed in one transaction. */
export interface StateChanges {
  launches?: LaunchChange[];
  results?: ResultChange[];
  /** Tasks whose state changes without an attempt ending (cancelling pending tasks, retrying). */
  taskStates?: Array<{ runId: number; index: number; state: TaskState; resetRetries?: boolean }>;
  run?: { id: number; state?: RunState; endedAt?: number | null; gatherState?: GatherState | null };
}

export interface Store {
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
    coordinator: ProcessIdentity;
  }, isAlive: (holder: ProcessIdentity) => boolean): { run: RunRecord } | { heldBy: ProcessIdentity };
  /**
   * Make `coordinator` the run's coordinator unless another live one holds it (checked with
   * `isAlive`, atomically). Returns the coordinator that holds it instead, or null on success.
   */
  claimRun(runId: number, coordinator: ProcessIdentity, isAlive: (holder: ProcessIdentity) => boolean): ProcessIdentity | null;
  releaseRun(runId: number, coordinator: ProcessIdentity): void;
  setLauncher(runId: number, launcher: ProcessIdentity | null): void;

  commit(changes: StateChanges): void;

  getRun(id: number): RunRecord | null;
  /** Newest first. */
  listRuns(options?: { job?: string; limit?: number }): RunRecord[];
  counts(runId: number): TaskCounts;
  listTasks(runId: number, options?: { state?: TaskState }): TaskRecord[];
  getTask(runId: number, name: string): TaskRecord | null;
  attempts(runId: number, index: number): AttemptRecord[];
  runningAttempts(runId: number): AttemptRecord[];
  /** The cache entries among `keys` (succeeded work from any run). */
  lookupCache(keys: string[]): Map<string, CacheEntry>;

  close(): void;
}
