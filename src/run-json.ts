/** The JSON shapes of a run, a task and an attempt: what `--json` prints and the dashboard's API serves. */
import type { AttemptRecord, GatherAttemptRecord, RunRecord, TaskCounts, TaskRecord } from './store/records.js';
import type { TaskRow } from './store/task-page.js';
import type { Unattended } from './engine/unattended-run.js';
import { taskImageIdentity } from './engine/plan-job.js';
import type { ImageIdentity } from './container/container-plan.js';
import type { JobSpec } from './job/job-spec.js';

/** The `status --json` shape other tools and the dashboard rely on. */
export interface StatusJson {
  run: number;
  job: string;
  /** local, slurm or sge. */
  backend: string;
  state: RunRecord['state'];
  counts: TaskCounts;
  total: number;
  gather: RunRecord['gatherState'];
  createdAt: string;
  endedAt: string | null;
  outdir: string;
  /** Set while the run is recorded running but no live process drives it: why, and the command that resumes it. */
  unattended: Unattended | null;
}

export function statusJson(run: RunRecord, counts: TaskCounts, unattended: Unattended | null = null): StatusJson {
  return {
    run: run.id,
    job: run.job,
    backend: run.backend,
    state: run.state,
    counts,
    total: Object.values(counts).reduce((a, b) => a + b, 0),
    gather: run.gatherState,
    createdAt: new Date(run.createdAt).toISOString(),
    endedAt: run.endedAt === null ? null : new Date(run.endedAt).toISOString(),
    outdir: run.spec.outdir,
    unattended,
  };
}

/** The `tasks --json` row shape. */
export interface TaskJson {
  index: number;
  name: string;
  state: TaskRecord['state'];
  attempts: number;
  reason: TaskRecord['reason'];
  exitCode: number | null;
  /** Bytes asked for by the last attempt. */
  memory: number | null;
  peakMemory: number | null;
  durationMs: number | null;
  /** The container image it runs in (rendered), or null: its run used no container. */
  image: string | null;
  /** That image's identity when the run was planned (sha256:… for podman and docker). */
  imageDigest: string | null;
}

export function taskJson(task: TaskRecord, spec: JobSpec): TaskJson {
  return {
    index: task.index,
    name: task.name,
    state: task.state,
    attempts: task.attempts,
    reason: task.reason,
    exitCode: task.exitCode,
    memory: task.memory,
    peakMemory: task.peakMemory,
    durationMs: task.durationMs,
    ...imageFields(taskImageIdentity(spec, task)),
  };
}

/** A `tasks --json` row with the host of the task's last attempt: the dashboard's task table. */
export interface TaskRowJson extends TaskJson {
  host: string | null;
}

export function taskRowJson(task: TaskRow, spec: JobSpec): TaskRowJson {
  return { ...taskJson(task, spec), host: task.host };
}

/** One attempt and its result record (times as ISO strings; null fields until it ends). */
export interface AttemptJson {
  attempt: number;
  state: AttemptRecord['state'];
  reason: AttemptRecord['reason'];
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  launchedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  /** Bytes asked for, and the most it used. */
  memory: number | null;
  peakMemory: number | null;
  cpuMs: number | null;
  timeMs: number | null;
  host: string | null;
  worker: string | null;
  /** The container image the attempt ran in and its identity (see TaskJson); null without a container, and for the gather. */
  image: string | null;
  imageDigest: string | null;
}

/**
 * An attempt of a task or of the gather (which asks for no memory or time of its own); `image`:
 * its task's (taskImageIdentity), the same for all of a task's attempts.
 */
export function attemptJson(attempt: AttemptRecord | GatherAttemptRecord, image: ImageIdentity | null = null): AttemptJson {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    attempt: attempt.attempt,
    state: attempt.state,
    reason: attempt.reason,
    exitCode: attempt.exitCode,
    signal: attempt.signal,
    error: attempt.error,
    launchedAt: new Date(attempt.launchedAt).toISOString(),
    startedAt: iso(attempt.startedAt),
    endedAt: iso(attempt.endedAt),
    memory: 'memory' in attempt ? attempt.memory : null,
    peakMemory: attempt.peakMemory,
    cpuMs: attempt.cpuMs,
    timeMs: 'timeMs' in attempt ? attempt.timeMs : null,
    host: attempt.host,
    worker: attempt.worker,
    ...imageFields(image),
  };
}

/** Without a container the fields are there, null: the shape does not depend on the job. */
export function imageFields(identity: ImageIdentity | null): { image: string | null; imageDigest: string | null } {
  return identity ?? { image: null, imageDigest: null };
}
