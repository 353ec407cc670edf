import type { AttemptReason, JobSpec } from '../job/job-spec.js';
import type {
  AttemptRecord,
  AttemptSpan,
  CacheEntry,
  Dispatch,
  GatherAttemptRecord,
  GatherState,
  ProcessIdentity,
  RunRecord,
  RunState,
  TaskRecord,
  TaskState,
  WorkerRecord,
} from './records.js';

/**
 * Table rows, and records from them. Both stores use the same column names; SQLite gives
 * numbers, and PostgreSQL gives its BIGINT columns (and counts) as strings, so every number
 * goes through `Number`.
 */

/** A number column: PostgreSQL gives BIGINT (and `count(*)`) as a string. */
export type DbNumber = number | string;

export interface RunRow {
  id: DbNumber;
  job: string;
  job_file: string;
  /** JSON of the JobSpec. */
  spec: string;
  backend: string;
  dispatch: Dispatch;
  state: RunState;
  created_at: DbNumber;
  ended_at: DbNumber | null;
  plan_key: string;
  /** JSON of a ProcessIdentity. */
  coordinator: string | null;
  launcher: string | null;
  gather_state: GatherState | null;
}

export interface TaskRow {
  run_id: DbNumber;
  idx: number;
  name: string;
  /** JSON of the task's variables. */
  vars: string;
  cache_key: string;
  state: TaskState;
  attempts: number;
  retry_base: number;
  platform_failures: number;
  cpus: number;
  memory: DbNumber | null;
  time_ms: DbNumber | null;
  reason: AttemptReason | null;
  exit_code: number | null;
  peak_memory: DbNumber | null;
  duration_ms: DbNumber | null;
}

/** The columns every attempt has, of a task (`attempts`) or of a gather (`gathers`). */
interface AttemptColumns {
  run_id: DbNumber;
  attempt: number;
  state: 'running' | 'done';
  dir: string;
  launched_at: DbNumber;
  reason: AttemptReason | null;
  exit_code: number | null;
  signal: string | null;
  started_at: DbNumber | null;
  ended_at: DbNumber | null;
  peak_memory: DbNumber | null;
  cpu_ms: DbNumber | null;
  host: string | null;
  error: string | null;
  worker: string | null;
  /** ms since the epoch; only attempts held by a pull worker have one. */
  lease_expires: DbNumber | null;
  /** JSON of the ProcessIdentity of the launcher supervising it (push dispatch on this machine). */
  launcher: string | null;
}

export interface AttemptRow extends AttemptColumns {
  idx: number;
  memory: DbNumber | null;
  time_ms: DbNumber | null;
}

export interface GatherRow extends AttemptColumns {
  cache_key: string | null;
}

export interface CacheRow {
  key: string;
  run_id: DbNumber;
  idx: number;
  attempt: number;
  out: string;
}

export interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  cpus: number;
  memory: DbNumber;
  launched_by: string | null;
  state: WorkerRecord['state'];
  started_at: DbNumber;
  heartbeat_at: DbNumber;
}

/** A worker with the attempts it holds (a count over `attempts` and `gathers`). */
export interface WorkerHoldingRow extends WorkerRow {
  holding: DbNumber;
}

export type SpanRow = Pick<AttemptRow, 'idx' | 'launched_at' | 'started_at' | 'ended_at' | 'reason' | 'memory' | 'peak_memory'>;

/** A page of tasks: each with the host of its last attempt. */
export interface TaskWithHostRow extends TaskRow {
  host: string | null;
}

export interface CountRow {
  n: DbNumber;
}

export interface StateCountRow extends CountRow {
  state: TaskState;
}

export function toRun(row: RunRow): RunRecord {
  return {
    id: Number(row.id),
    job: row.job,
    jobFile: row.job_file,
    spec: parseStoredSpec(row.spec),
    backend: row.backend,
    dispatch: row.dispatch,
    state: row.state,
    createdAt: Number(row.created_at),
    endedAt: nullableNumber(row.ended_at),
    planKey: row.plan_key,
    coordinator: toIdentity(row.coordinator),
    launcher: toIdentity(row.launcher),
    gatherState: row.gather_state ?? null,
  };
}

export function toTask(row: TaskRow): TaskRecord {
  return {
    index: Number(row.idx),
    name: row.name,
    vars: JSON.parse(row.vars) as Record<string, string>,
    cacheKey: row.cache_key,
    state: row.state,
    attempts: Number(row.attempts),
    retryBase: Number(row.retry_base),
    platformFailures: Number(row.platform_failures),
    cpus: Number(row.cpus),
    memory: nullableNumber(row.memory),
    timeMs: nullableNumber(row.time_ms),
    reason: row.reason ?? null,
    exitCode: nullableNumber(row.exit_code),
    peakMemory: nullableNumber(row.peak_memory),
    durationMs: nullableNumber(row.duration_ms),
  };
}

export function toSpan(row: SpanRow): AttemptSpan {
  return {
    index: Number(row.idx),
    launchedAt: Number(row.launched_at),
    startedAt: nullableNumber(row.started_at),
    endedAt: nullableNumber(row.ended_at),
    reason: row.reason ?? null,
    memory: nullableNumber(row.memory),
    peakMemory: nullableNumber(row.peak_memory),
  };
}

function attemptCommon(row: AttemptColumns) {
  return {
    runId: Number(row.run_id),
    attempt: Number(row.attempt),
    state: row.state,
    dir: row.dir,
    launchedAt: Number(row.launched_at),
    reason: row.reason ?? null,
    exitCode: nullableNumber(row.exit_code),
    signal: row.signal ?? null,
    startedAt: nullableNumber(row.started_at),
    endedAt: nullableNumber(row.ended_at),
    peakMemory: nullableNumber(row.peak_memory),
    cpuMs: nullableNumber(row.cpu_ms),
    host: row.host ?? null,
    error: row.error ?? null,
    worker: row.worker ?? null,
    launcher: toIdentity(row.launcher),
  };
}

export function toAttempt(row: AttemptRow): AttemptRecord {
  return { ...attemptCommon(row), index: Number(row.idx), memory: nullableNumber(row.memory), timeMs: nullableNumber(row.time_ms) };
}

export function toGatherAttempt(row: GatherRow): GatherAttemptRecord {
  return { ...attemptCommon(row), cacheKey: row.cache_key ?? null };
}

export function toCacheEntry(row: CacheRow): CacheEntry {
  return { key: row.key, runId: Number(row.run_id), index: Number(row.idx), attempt: Number(row.attempt), out: row.out };
}

export function toWorker(row: WorkerHoldingRow): WorkerRecord {
  return {
    id: row.id,
    host: row.host,
    pid: Number(row.pid),
    cpus: Number(row.cpus),
    memory: Number(row.memory),
    launchedBy: row.launched_by ?? null,
    state: row.state,
    startedAt: Number(row.started_at),
    heartbeatAt: Number(row.heartbeat_at),
    holding: Number(row.holding ?? 0),
  };
}

/** A coordinator or launcher column: JSON of a ProcessIdentity, or null. */
export function toIdentity(value: string | null | undefined): ProcessIdentity | null {
  if (value === null || value === undefined) return null;
  return JSON.parse(value) as ProcessIdentity | null;
}

export function identityColumn(identity: ProcessIdentity | null): string | null {
  return identity ? JSON.stringify(identity) : null;
}

export function sameProcess(a: ProcessIdentity, b: ProcessIdentity | null): boolean {
  return b !== null && a.pid === b.pid && a.host === b.host && a.startedAt === b.startedAt;
}

export function nullableNumber(value: DbNumber | null | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** What `duration_ms` of a task records for an attempt that ran from `startedAt` to `endedAt`. */
export function durationOf(result: { startedAt: number | null; endedAt: number | null }): number | null {
  return result.startedAt !== null && result.endedAt !== null ? result.endedAt - result.startedAt : null;
}

/**
 * A run's spec as stored. Specs written before fanout 0.2 name the memory a task asks for
 * `resources.memoryBytes`; it is `resources.memory` (bytes) everywhere now.
 */
export function parseStoredSpec(text: string): JobSpec {
  const spec = JSON.parse(text) as JobSpec & { resources: { memoryBytes?: number | null } };
  if (spec.resources && 'memoryBytes' in spec.resources) {
    const { memoryBytes, ...resources } = spec.resources;
    return { ...spec, resources: { ...resources, memory: memoryBytes ?? null } };
  }
  return spec;
}
