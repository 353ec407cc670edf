import type { AttemptReason, JobSpec } from '../job/job-spec.js';
import type { ProcessIdentity } from '../process-identity.js';

/**
 * What the store keeps, as the rest of fanout sees it: runs, their tasks, each task's attempts,
 * each run's gather attempts, the cache of succeeded work, and the pull workers.
 */

export type RunState = 'running' | 'succeeded' | 'failed' | 'cancelled';
export type TaskState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';
export type GatherState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';
/** How a run's gather ended: it ran and succeeded or failed, or it was skipped as done work. */
export type GatherOutcome = Extract<GatherState, 'succeeded' | 'failed' | 'skipped'>;

export const TASK_STATES: readonly TaskState[] = ['pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'];

/**
 * How a run's attempts get compute: `push`, a coordinator process submits them to a backend and
 * must stay alive (local, SLURM, Grid Engine); `pull`, they wait in the store's queue and pull
 * workers claim them (no process has to stay alive for the run).
 */
export type Dispatch = 'push' | 'pull';

/** Which process drives a run, so a second one can tell whether it is still alive. */
export type { ProcessIdentity } from '../process-identity.js';

export interface RunRecord {
  id: number;
  job: string;
  jobFile: string;
  spec: JobSpec;
  /** The backend's name, as the job file or the command line gave it: shown, never branched on. */
  backend: string;
  dispatch: Dispatch;
  state: RunState;
  createdAt: number;
  endedAt: number | null;
  /** Identifies the planned tasks; a resume in place needs the same plan. */
  planKey: string;
  coordinator: ProcessIdentity | null;
  /** The launcher of the coordinator driving the run now; each attempt records its own (AttemptRecord.launcher). */
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
  /** Platform failures (lost, infra) retried without charge since the last reset, against retry.platform_max. */
  platformFailures: number;
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

/** What every attempt has, of a task or of a gather: launched, and once `done`, its outcome. */
interface AttemptCommon extends Omit<AttemptOutcome, 'reason' | 'error'> {
  runId: number;
  attempt: number;
  state: 'running' | 'done';
  dir: string;
  launchedAt: number;
  reason: AttemptReason | null;
  error: string | null;
  /** The pull worker that claimed it (pull dispatch), else null. */
  worker: string | null;
  /** The launcher process that supervises it (local processes), else null: a later coordinator adopts it from there. */
  launcher: ProcessIdentity | null;
}

/** An attempt of a task. */
export interface AttemptRecord extends AttemptCommon {
  index: number;
  memory: number | null;
  timeMs: number | null;
}

/** An attempt of a run's gather step. */
export interface GatherAttemptRecord extends AttemptCommon {
  /** Set when it succeeded: the same gather over the same task results is done work. */
  cacheKey: string | null;
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

/** Succeeded task work, remembered by its cache key. */
export interface CacheEntry {
  key: string;
  runId: number;
  index: number;
  attempt: number;
  out: string;
}

export type TaskCounts = Record<TaskState, number>;

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
  /** `lost`: its leases ran out and its attempts were taken back (it heartbeats again: `running`). */
  state: 'running' | 'stopped' | 'lost';
  startedAt: number;
  heartbeatAt: number;
  /** Attempts it holds now. */
  holding: number;
}
