import type { GatherAttemptRecord, ProcessIdentity, RunRecord } from '../records.js';
import { durationOf, identityColumn, sameProcess, toGatherAttempt, toIdentity, toRun, type GatherRow, type RunRow } from '../rows.js';
import type { CommitOutcome, GatherEnd, GatherStart, NewRun, ResultChange, RunLedger, StateChanges } from '../run-ledger.js';
import { immediate, type SqliteDatabase } from './sqlite-connection.js';

/** The run's ledger in SQLite: each batch one IMMEDIATE transaction over prepared statements. */
export class SqliteLedger implements RunLedger {
  private readonly statements;

  constructor(private readonly db: SqliteDatabase) {
    this.statements = prepareStatements(db);
  }

  async createRun(run: NewRun, isAlive: (holder: ProcessIdentity) => boolean): Promise<{ run: RunRecord } | { heldBy: ProcessIdentity }> {
    const s = this.statements;
    // IMMEDIATE: two coordinators starting the same job at once cannot both see it free.
    const created = immediate(this.db, (): RunRecord | ProcessIdentity => {
      for (const row of s.runningRunsOfJob.all(run.job)) {
        const holder = toIdentity(row.coordinator);
        if (holder && !sameProcess(holder, run.coordinator) && isAlive(holder)) return holder;
      }
      const { lastInsertRowid } = s.insertRun.run({
        job: run.job,
        job_file: run.jobFile,
        spec: JSON.stringify(run.spec),
        backend: run.backend,
        dispatch: run.dispatch,
        created_at: Date.now(),
        plan_key: run.planKey,
        coordinator: identityColumn(run.coordinator),
      });
      const runId = Number(lastInsertRowid);
      for (const task of run.tasks) {
        s.insertTask.run({
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
      return toRun(s.getRun.get(runId)!);
    });
    return 'id' in created ? { run: created } : { heldBy: created };
  }

  async claimRun(runId: number, coordinator: ProcessIdentity, isAlive: (holder: ProcessIdentity) => boolean): Promise<ProcessIdentity | null> {
    // IMMEDIATE takes the write lock before reading, so two claimers cannot both see it free.
    return immediate(this.db, () => {
      const holder = toIdentity(this.statements.getRun.get(runId)?.coordinator);
      if (holder && !sameProcess(holder, coordinator) && isAlive(holder)) return holder;
      this.statements.setCoordinator.run(identityColumn(coordinator), runId);
      return null;
    });
  }

  async releaseRun(runId: number, coordinator: ProcessIdentity): Promise<void> {
    immediate(this.db, () => {
      const holder = toIdentity(this.statements.getRun.get(runId)?.coordinator);
      if (holder && sameProcess(holder, coordinator)) this.statements.setCoordinator.run(null, runId);
    });
  }

  async setLauncher(runId: number, launcher: ProcessIdentity | null): Promise<void> {
    this.statements.setLauncher.run(identityColumn(launcher), runId);
  }

  async commit(changes: StateChanges): Promise<CommitOutcome> {
    const appliedResults: ResultChange[] = [];
    const s = this.statements;
    immediate(this.db, () => {
      for (const launch of changes.launches ?? []) {
        s.insertAttempt.run({
          run_id: launch.runId,
          idx: launch.index,
          attempt: launch.attempt,
          dir: launch.dir,
          memory: launch.memory,
          time_ms: launch.timeMs,
          launched_at: launch.launchedAt,
          launcher: identityColumn(launch.launcher ?? null),
        });
        s.taskLaunched.run(launch.attempt, launch.runId, launch.index);
      }
      for (const change of changes.results ?? []) {
        const r = change.result;
        const ended = s.finishAttempt.run({
          run_id: change.runId,
          idx: change.index,
          attempt: change.attempt,
          ...outcomeColumns(r),
        });
        // Already ended (reported twice, or reaped after its lease ran out): the first word stands.
        if (ended.changes === 0) continue;
        appliedResults.push(change);
        s.taskFinished.run({
          run_id: change.runId,
          idx: change.index,
          state: change.task.state,
          memory: change.task.memory,
          time_ms: change.task.timeMs,
          retry_base: change.task.retryBase,
          platform_failures: change.task.platformFailures,
          reason: r.reason,
          exit_code: r.exitCode,
          peak_memory: r.peakMemory,
          duration_ms: durationOf(r),
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
    });
    return { appliedResults };
  }

  async startGather(runId: number, start: GatherStart): Promise<GatherAttemptRecord | null> {
    const s = this.statements;
    // IMMEDIATE: two processes starting the gather at once cannot both see none running.
    return immediate(this.db, () => {
      if (!s.getRun.get(runId)) throw new Error(`the store has no run ${runId}`);
      if (s.runningGather.get(runId)) return null;
      const attempt = s.lastGatherAttempt.get(runId)!.n + 1;
      s.insertGather.run({
        run_id: runId,
        attempt,
        dir: start.dir(attempt),
        launched_at: start.launchedAt,
        worker: null,
        lease_expires: null,
        launcher: identityColumn(start.launcher ?? null),
      });
      s.setGatherState.run('running', runId);
      return toGatherAttempt(s.getGather.get(runId, attempt)!);
    });
  }

  async endGather(end: GatherEnd): Promise<boolean> {
    const s = this.statements;
    return immediate(this.db, () => {
      const ended = s.finishGather.run({
        run_id: end.runId,
        attempt: end.attempt,
        ...outcomeColumns(end.result),
        cache_key: end.result.reason === 'ok' ? (end.cacheKey ?? null) : null,
      });
      // Already ended (reported twice, or reaped after its lease ran out): the first word stands.
      if (ended.changes === 0) return false;
      s.setGatherState.run(end.gatherState, end.runId);
      return true;
    });
  }
}

/** The result-record columns of an ended attempt, of a task or a gather. */
function outcomeColumns(r: ResultChange['result']) {
  return {
    reason: r.reason,
    exit_code: r.exitCode,
    signal: r.signal,
    started_at: r.startedAt,
    ended_at: r.endedAt,
    peak_memory: r.peakMemory,
    cpu_ms: r.cpuMs,
    host: r.host,
    error: r.error ?? null,
  };
}

type OutcomeColumns = ReturnType<typeof outcomeColumns>;

function prepareStatements(db: SqliteDatabase) {
  return {
    insertRun: db.prepare<{
      job: string;
      job_file: string;
      spec: string;
      backend: string;
      dispatch: string;
      created_at: number;
      plan_key: string;
      coordinator: string | null;
    }>(
      `INSERT INTO runs (job, job_file, spec, backend, dispatch, state, created_at, plan_key, coordinator)
       VALUES (@job, @job_file, @spec, @backend, @dispatch, 'running', @created_at, @plan_key, @coordinator)`,
    ),
    insertTask: db.prepare<{
      run_id: number;
      idx: number;
      name: string;
      vars: string;
      cache_key: string;
      state: string;
      cpus: number;
      memory: number | null;
      time_ms: number | null;
    }>(
      `INSERT INTO tasks (run_id, idx, name, vars, cache_key, state, cpus, memory, time_ms)
       VALUES (@run_id, @idx, @name, @vars, @cache_key, @state, @cpus, @memory, @time_ms)`,
    ),
    getRun: db.prepare<[number], RunRow>('SELECT * FROM runs WHERE id = ?'),
    runningRunsOfJob: db.prepare<[string], Pick<RunRow, 'coordinator'>>(`SELECT coordinator FROM runs WHERE job = ? AND state = 'running'`),
    setCoordinator: db.prepare<[string | null, number]>('UPDATE runs SET coordinator = ? WHERE id = ?'),
    setLauncher: db.prepare<[string | null, number]>('UPDATE runs SET launcher = ? WHERE id = ?'),
    setRunState: db.prepare<[string, number | null, number]>('UPDATE runs SET state = ?, ended_at = ? WHERE id = ?'),
    setGatherState: db.prepare<[string | null, number]>('UPDATE runs SET gather_state = ? WHERE id = ?'),
    insertAttempt: db.prepare<{
      run_id: number;
      idx: number;
      attempt: number;
      dir: string;
      memory: number | null;
      time_ms: number | null;
      launched_at: number;
      launcher: string | null;
    }>(
      `INSERT INTO attempts (run_id, idx, attempt, state, dir, memory, time_ms, launched_at, launcher)
       VALUES (@run_id, @idx, @attempt, 'running', @dir, @memory, @time_ms, @launched_at, @launcher)`,
    ),
    taskLaunched: db.prepare<[number, number, number]>(`UPDATE tasks SET state = 'running', attempts = ? WHERE run_id = ? AND idx = ?`),
    finishAttempt: db.prepare<OutcomeColumns & { run_id: number; idx: number; attempt: number }>(
      `UPDATE attempts SET state = 'done', reason = @reason, exit_code = @exit_code, signal = @signal,
         started_at = @started_at, ended_at = @ended_at, peak_memory = @peak_memory, cpu_ms = @cpu_ms,
         host = @host, error = @error, lease_expires = NULL
       WHERE run_id = @run_id AND idx = @idx AND attempt = @attempt AND state = 'running'`,
    ),
    taskFinished: db.prepare<{
      run_id: number;
      idx: number;
      state: string;
      memory: number | null;
      time_ms: number | null;
      retry_base: number;
      platform_failures: number;
      reason: string;
      exit_code: number | null;
      peak_memory: number | null;
      duration_ms: number | null;
    }>(
      `UPDATE tasks SET state = @state, memory = @memory, time_ms = @time_ms, retry_base = @retry_base,
         platform_failures = @platform_failures, reason = @reason,
         exit_code = @exit_code, peak_memory = @peak_memory, duration_ms = @duration_ms
       WHERE run_id = @run_id AND idx = @idx`,
    ),
    setTaskState: db.prepare<[string, number, number]>('UPDATE tasks SET state = ? WHERE run_id = ? AND idx = ?'),
    resetTask: db.prepare<[string, number, number]>('UPDATE tasks SET state = ?, retry_base = attempts, platform_failures = 0 WHERE run_id = ? AND idx = ?'),
    upsertCache: db.prepare<{ key: string; run_id: number; idx: number; attempt: number; out: string }>(
      `INSERT INTO cache (key, run_id, idx, attempt, out) VALUES (@key, @run_id, @idx, @attempt, @out)
       ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id, idx = excluded.idx,
         attempt = excluded.attempt, out = excluded.out`,
    ),
    runningGather: db.prepare<[number], { attempt: number }>(`SELECT attempt FROM gathers WHERE run_id = ? AND state = 'running' LIMIT 1`),
    lastGatherAttempt: db.prepare<[number], { n: number }>('SELECT COALESCE(MAX(attempt), 0) AS n FROM gathers WHERE run_id = ?'),
    insertGather: db.prepare<{
      run_id: number;
      attempt: number;
      dir: string;
      launched_at: number;
      worker: string | null;
      lease_expires: number | null;
      launcher: string | null;
    }>(
      `INSERT INTO gathers (run_id, attempt, state, dir, launched_at, worker, lease_expires, launcher)
       VALUES (@run_id, @attempt, 'running', @dir, @launched_at, @worker, @lease_expires, @launcher)`,
    ),
    getGather: db.prepare<[number, number], GatherRow>('SELECT * FROM gathers WHERE run_id = ? AND attempt = ?'),
    finishGather: db.prepare<OutcomeColumns & { run_id: number; attempt: number; cache_key: string | null }>(
      `UPDATE gathers SET state = 'done', reason = @reason, exit_code = @exit_code, signal = @signal,
         started_at = @started_at, ended_at = @ended_at, peak_memory = @peak_memory, cpu_ms = @cpu_ms,
         host = @host, error = @error, lease_expires = NULL, cache_key = @cache_key
       WHERE run_id = @run_id AND attempt = @attempt AND state = 'running'`,
    ),
  };
}
