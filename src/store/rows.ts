import type { JobSpec } from '../job/job-spec.js';
import type { AttemptRecord, AttemptSpan, ProcessIdentity, RunRecord, TaskRecord, TaskState, WorkerRecord } from './store.js';

/**
 * Records from table rows. Both stores use the same column names; SQLite gives numbers, and
 * PostgreSQL gives its BIGINT columns as strings, so every number goes through `Number`.
 */

export type Row = Record<string, unknown>;

export function toRun(row: Row): RunRecord {
  return {
    id: Number(row.id),
    job: String(row.job),
    jobFile: String(row.job_file),
    spec: JSON.parse(String(row.spec)) as JobSpec,
    backend: String(row.backend),
    state: row.state as RunRecord['state'],
    createdAt: Number(row.created_at),
    endedAt: nullableNumber(row.ended_at),
    planKey: String(row.plan_key),
    coordinator: toIdentity(row.coordinator),
    launcher: toIdentity(row.launcher),
    gatherState: (row.gather_state as RunRecord['gatherState']) ?? null,
  };
}

export function toTask(row: Row): TaskRecord {
  return {
    index: Number(row.idx),
    name: String(row.name),
    vars: JSON.parse(String(row.vars)) as Record<string, string>,
    cacheKey: String(row.cache_key),
    state: row.state as TaskState,
    attempts: Number(row.attempts),
    retryBase: Number(row.retry_base),
    cpus: Number(row.cpus),
    memory: nullableNumber(row.memory),
    timeMs: nullableNumber(row.time_ms),
    reason: (row.reason as TaskRecord['reason']) ?? null,
    exitCode: nullableNumber(row.exit_code),
    peakMemory: nullableNumber(row.peak_memory),
    durationMs: nullableNumber(row.duration_ms),
  };
}

export function toSpan(row: Row): AttemptSpan {
  return {
    index: Number(row.idx),
    launchedAt: Number(row.launched_at),
    startedAt: nullableNumber(row.started_at),
    endedAt: nullableNumber(row.ended_at),
    reason: (row.reason as AttemptSpan['reason']) ?? null,
    memory: nullableNumber(row.memory),
    peakMemory: nullableNumber(row.peak_memory),
  };
}

export function toAttempt(row: Row): AttemptRecord {
  return {
    runId: Number(row.run_id),
    index: Number(row.idx),
    attempt: Number(row.attempt),
    state: row.state as AttemptRecord['state'],
    dir: String(row.dir),
    memory: nullableNumber(row.memory),
    timeMs: nullableNumber(row.time_ms),
    launchedAt: Number(row.launched_at),
    reason: (row.reason as AttemptRecord['reason']) ?? null,
    exitCode: nullableNumber(row.exit_code),
    signal: (row.signal as string | null) ?? null,
    startedAt: nullableNumber(row.started_at),
    endedAt: nullableNumber(row.ended_at),
    peakMemory: nullableNumber(row.peak_memory),
    cpuMs: nullableNumber(row.cpu_ms),
    host: (row.host as string | null) ?? null,
    error: (row.error as string | null) ?? null,
    worker: (row.worker as string | null) ?? null,
  };
}

export function toWorker(row: Row): WorkerRecord {
  return {
    id: String(row.id),
    host: String(row.host),
    pid: Number(row.pid),
    cpus: Number(row.cpus),
    memory: Number(row.memory),
    launchedBy: (row.launched_by as string | null) ?? null,
    state: row.state as WorkerRecord['state'],
    startedAt: Number(row.started_at),
    heartbeatAt: Number(row.heartbeat_at),
    holding: Number(row.holding ?? 0),
  };
}

/** A coordinator or launcher column: JSON of a ProcessIdentity, or null. */
export function toIdentity(value: unknown): ProcessIdentity | null {
  if (value === null || value === undefined) return null;
  return JSON.parse(String(value)) as ProcessIdentity | null;
}

export function identityColumn(identity: ProcessIdentity | null): string | null {
  return identity ? JSON.stringify(identity) : null;
}

export function sameProcess(a: ProcessIdentity, b: ProcessIdentity | null): boolean {
  return b !== null && a.pid === b.pid && a.host === b.host && a.startedAt === b.startedAt;
}

export function nullableNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** What `duration_ms` of a task records for an attempt that ran from `startedAt` to `endedAt`. */
export function durationOf(result: { startedAt: number | null; endedAt: number | null }): number | null {
  return result.startedAt !== null && result.endedAt !== null ? result.endedAt - result.startedAt : null;
}
