import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { UserError } from '../../errors.js';
import type { JobSpec } from '../../spec/job-spec.js';
import {
  TASK_STATES,
  type AttemptRecord,
  type CacheEntry,
  type ProcessIdentity,
  type RunRecord,
  type StateChanges,
  type Store,
  type TaskCounts,
  type TaskRecord,
  type TaskState,
} from '../store.js';
import { MIGRATIONS } from './migrations.js';

type Row = Record<string, unknown>;

/** The embedded default store: one SQLite file in WAL mode. */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly statements;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives a crash of any process; only a power loss may lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 10000');
    migrate(this.db, path);
    this.statements = prepareStatements(this.db);
  }

  createRun(run: Parameters<Store['createRun']>[0], isAlive: (holder: ProcessIdentity) => boolean): { run: RunRecord } | { heldBy: ProcessIdentity } {
    const create = this.db.transaction((): number | ProcessIdentity => {
      for (const row of this.statements.runningRunsOfJob.all(run.job) as Row[]) {
        const holder = row.coordinator ? (JSON.parse(String(row.coordinator)) as ProcessIdentity) : null;
        if (holder && !sameProcess(holder, run.coordinator) && isAlive(holder)) return holder;
      }
      const now = Date.now();
      const { lastInsertRowid } = this.statements.insertRun.run({
        job: run.job,
        job_file: run.jobFile,
        spec: JSON.stringify(run.spec),
        backend: run.backend,
        created_at: now,
        plan_key: run.planKey,
        coordinator: JSON.stringify(run.coordinator),
      });
      const runId = Number(lastInsertRowid);
      for (const task of run.tasks) {
        this.statements.insertTask.run({
          run_id: runId,
          idx: task.index,
          name: task.name,
          vars: JSON.stringify(task.vars),
          cache_key: task.cacheKey,
          state: task.state,
          cpus: task.cpus,
          memory: task.memory,
          time_ms: task.timeMs,
        });
      }
      return runId;
    });
    // IMMEDIATE: two coordinators starting the same job at once cannot both see it free.
    const created = create.immediate();
    return typeof created === 'number' ? { run: this.getRun(created)! } : { heldBy: created };
  }

  claimRun(runId: number, coordinator: ProcessIdentity, isAlive: (holder: ProcessIdentity) => boolean): ProcessIdentity | null {
    const claim = this.db.transaction(() => {
      const row = this.statements.getRun.get(runId) as Row | undefined;
      const holder = row?.coordinator ? (JSON.parse(String(row.coordinator)) as ProcessIdentity) : null;
      if (holder && !sameProcess(holder, coordinator) && isAlive(holder)) return holder;
      this.statements.setCoordinator.run(JSON.stringify(coordinator), runId);
      return null;
    });
    // IMMEDIATE takes the write lock before reading, so two claimers cannot both see it free.
    return claim.immediate();
  }

  releaseRun(runId: number, coordinator: ProcessIdentity): void {
    this.db.transaction(() => {
      const row = this.statements.getRun.get(runId) as Row | undefined;
      const holder = row?.coordinator ? (JSON.parse(String(row.coordinator)) as ProcessIdentity) : null;
      if (holder && sameProcess(holder, coordinator)) this.statements.setCoordinator.run(null, runId);
    }).immediate();
  }

  setLauncher(runId: number, launcher: ProcessIdentity | null): void {
    this.statements.setLauncher.run(launcher ? JSON.stringify(launcher) : null, runId);
  }

  commit(changes: StateChanges): void {
    this.db.transaction(() => {
      const s = this.statements;
      for (const launch of changes.launches ?? []) {
        s.insertAttempt.run({
          run_id: launch.runId,
          idx: launch.index,
          attempt: launch.attempt,
          dir: launch.dir,
          memory: launch.memory,
          time_ms: launch.timeMs,
          launched_at: launch.launchedAt,
        });
        s.taskLaunched.run(launch.attempt, launch.runId, launch.index);
      }
      for (const change of changes.results ?? []) {
        const r = change.result;
        s.finishAttempt.run({
          run_id: change.runId,
          idx: change.index,
          attempt: change.attempt,
          reason: r.reason,
          exit_code: r.exitCode,
          signal: r.signal,
          started_at: r.startedAt,
          ended_at: r.endedAt,
          peak_memory: r.peakMemory,
          cpu_ms: r.cpuMs,
          host: r.host,
          error: r.error ?? null,
        });
        s.taskFinished.run({
          run_id: change.runId,
          idx: change.index,
          state: change.task.state,
          memory: change.task.memory,
          time_ms: change.task.timeMs,
          retry_base: change.task.retryBase,
          reason: r.reason,
          exit_code: r.exitCode,
          peak_memory: r.peakMemory,
          duration_ms: r.startedAt !== null && r.endedAt !== null ? r.endedAt - r.startedAt : null,
        });
        if (change.cache) {
          const c = change.cache;
          s.upsertCache.run({ key: c.key, run_id: c.runId, idx: c.index, attempt: c.attempt, out: c.out });
        }
      }
      for (const task of changes.taskStates ?? []) {
        if (task.resetRetries) s.resetTask.run(task.state, task.runId, task.index);
        else s.setTaskState.run(task.state, task.runId, task.index);
      }
      const run = changes.run;
      if (run) {
        if (run.state !== undefined) s.setRunState.run(run.state, run.endedAt ?? null, run.id);
        if (run.gatherState !== undefined) s.setGatherState.run(run.gatherState, run.id);
      }
    })();
  }

  getRun(id: number): RunRecord | null {
    const row = this.statements.getRun.get(id) as Row | undefined;
    return row ? toRun(row) : null;
  }

  listRuns(options: { job?: string; limit?: number } = {}): RunRecord[] {
    const limit = options.limit ?? -1;
    const rows = (options.job === undefined
      ? this.statements.listRuns.all(limit)
      : this.statements.listRunsOfJob.all(options.job, limit)) as Row[];
    return rows.map(toRun);
  }

  counts(runId: number): TaskCounts {
    const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as TaskCounts;
    for (const row of this.statements.counts.all(runId) as Row[]) counts[row.state as TaskState] = Number(row.n);
    return counts;
  }

  listTasks(runId: number, options: { state?: TaskState } = {}): TaskRecord[] {
    const rows = options.state ? this.statements.listTasksInState.all(runId, options.state) : this.statements.listTasks.all(runId);
    return (rows as Row[]).map(toTask);
  }

  getTask(runId: number, name: string): TaskRecord | null {
    const row = this.statements.getTask.get(runId, name) as Row | undefined;
    return row ? toTask(row) : null;
  }

  attempts(runId: number, index: number): AttemptRecord[] {
    return (this.statements.attempts.all(runId, index) as Row[]).map(toAttempt);
  }

  runningAttempts(runId: number): AttemptRecord[] {
    return (this.statements.runningAttempts.all(runId) as Row[]).map(toAttempt);
  }

  lookupCache(keys: string[]): Map<string, CacheEntry> {
    const found = new Map<string, CacheEntry>();
    for (const key of keys) {
      const row = this.statements.getCache.get(key) as Row | undefined;
      if (row) found.set(key, { key, runId: Number(row.run_id), index: Number(row.idx), attempt: Number(row.attempt), out: String(row.out) });
    }
    return found;
  }

  close(): void {
    this.db.close();
  }
}

function migrate(db: Database.Database, path: string): void {
  const current = Number(db.pragma('user_version', { simple: true }));
  if (current > MIGRATIONS.length) {
    throw new UserError(
      `the store ${path} was written by a newer fanout (schema ${current}, this fanout knows ${MIGRATIONS.length})`,
      'upgrade fanout, or use another --home',
    );
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}

function prepareStatements(db: Database.Database) {
  return {
    insertRun: db.prepare(
      `INSERT INTO runs (job, job_file, spec, backend, state, created_at, plan_key, coordinator)
       VALUES (@job, @job_file, @spec, @backend, 'running', @created_at, @plan_key, @coordinator)`,
    ),
    insertTask: db.prepare(
      `INSERT INTO tasks (run_id, idx, name, vars, cache_key, state, cpus, memory, time_ms)
       VALUES (@run_id, @idx, @name, @vars, @cache_key, @state, @cpus, @memory, @time_ms)`,
    ),
    getRun: db.prepare('SELECT * FROM runs WHERE id = ?'),
    listRuns: db.prepare('SELECT * FROM runs ORDER BY id DESC LIMIT ?'),
    runningRunsOfJob: db.prepare(`SELECT coordinator FROM runs WHERE job = ? AND state = 'running'`),
    listRunsOfJob: db.prepare('SELECT * FROM runs WHERE job = ? ORDER BY id DESC LIMIT ?'),
    setCoordinator: db.prepare('UPDATE runs SET coordinator = ? WHERE id = ?'),
    setLauncher: db.prepare('UPDATE runs SET launcher = ? WHERE id = ?'),
    setRunState: db.prepare('UPDATE runs SET state = ?, ended_at = ? WHERE id = ?'),
    setGatherState: db.prepare('UPDATE runs SET gather_state = ? WHERE id = ?'),
    counts: db.prepare('SELECT state, COUNT(*) AS n FROM tasks WHERE run_id = ? GROUP BY state'),
    listTasks: db.prepare('SELECT * FROM tasks WHERE run_id = ? ORDER BY idx'),
    listTasksInState: db.prepare('SELECT * FROM tasks WHERE run_id = ? AND state = ? ORDER BY idx'),
    getTask: db.prepare('SELECT * FROM tasks WHERE run_id = ? AND name = ?'),
    insertAttempt: db.prepare(
      `INSERT INTO attempts (run_id, idx, attempt, state, dir, memory, time_ms, launched_at)
       VALUES (@run_id, @idx, @attempt, 'running', @dir, @memory, @time_ms, @launched_at)`,
    ),
    taskLaunched: db.prepare(`UPDATE tasks SET state = 'running', attempts = ? WHERE run_id = ? AND idx = ?`),
    finishAttempt: db.prepare(
      `UPDATE attempts SET state = 'done', reason = @reason, exit_code = @exit_code, signal = @signal,
         started_at = @started_at, ended_at = @ended_at, peak_memory = @peak_memory, cpu_ms = @cpu_ms,
         host = @host, error = @error
       WHERE run_id = @run_id AND idx = @idx AND attempt = @attempt`,
    ),
    taskFinished: db.prepare(
      `UPDATE tasks SET state = @state, memory = @memory, time_ms = @time_ms, retry_base = @retry_base, reason = @reason,
         exit_code = @exit_code, peak_memory = @peak_memory, duration_ms = @duration_ms
       WHERE run_id = @run_id AND idx = @idx`,
    ),
    setTaskState: db.prepare('UPDATE tasks SET state = ? WHERE run_id = ? AND idx = ?'),
    resetTask: db.prepare('UPDATE tasks SET state = ?, retry_base = attempts WHERE run_id = ? AND idx = ?'),
    attempts: db.prepare('SELECT * FROM attempts WHERE run_id = ? AND idx = ? ORDER BY attempt'),
    runningAttempts: db.prepare(`SELECT * FROM attempts WHERE run_id = ? AND state = 'running' ORDER BY idx, attempt`),
    getCache: db.prepare('SELECT * FROM cache WHERE key = ?'),
    upsertCache: db.prepare(
      `INSERT INTO cache (key, run_id, idx, attempt, out) VALUES (@key, @run_id, @idx, @attempt, @out)
       ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id, idx = excluded.idx,
         attempt = excluded.attempt, out = excluded.out`,
    ),
  };
}

function sameProcess(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.pid === b.pid && a.host === b.host && a.startedAt === b.startedAt;
}

function toRun(row: Row): RunRecord {
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
    coordinator: row.coordinator ? (JSON.parse(String(row.coordinator)) as ProcessIdentity) : null,
    launcher: row.launcher ? (JSON.parse(String(row.launcher)) as ProcessIdentity) : null,
    gatherState: (row.gather_state as RunRecord['gatherState']) ?? null,
  };
}

function toTask(row: Row): TaskRecord {
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

function toAttempt(row: Row): AttemptRecord {
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
  };
}

function nullableNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}
