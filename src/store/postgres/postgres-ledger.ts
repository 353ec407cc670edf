import type { GatherAttemptRecord, ProcessIdentity, RunRecord } from '../records.js';
import { durationOf, identityColumn, sameProcess, toGatherAttempt, toIdentity, toRun, type DbNumber, type GatherRow, type RunRow } from '../rows.js';
import type { CommitOutcome, GatherEnd, GatherStart, NewRun, RunLedger, StateChanges } from '../run-ledger.js';
import { NOW_MS, statement, type PostgresConnection, type Statement } from './postgres-connection.js';

/**
 * The run's ledger in PostgreSQL: every method is a few round trips whatever the batch size
 * (multi-row statements over arrays); a commit of one kind of change is one statement.
 */
export class PostgresLedger implements RunLedger {
  constructor(private readonly db: PostgresConnection) {}

  async createRun(run: NewRun, isAlive: (holder: ProcessIdentity) => boolean): Promise<{ run: RunRecord } | { heldBy: ProcessIdentity }> {
    const created = await this.db.transaction(async (query) => {
      // Two coordinators starting the same job at once queue here, so they cannot both see it free.
      await query(SQL.lockJob, [JOB_LOCK_SPACE, run.job]);
      for (const row of await query(SQL.runningRunsOfJob, [run.job])) {
        const holder = toIdentity(row.coordinator);
        if (holder && !sameProcess(holder, run.coordinator) && isAlive(holder)) return { heldBy: holder };
      }
      const [inserted] = await query(SQL.insertRun, [
        run.job,
        run.jobFile,
        JSON.stringify(run.spec),
        run.backend,
        run.dispatch,
        run.planKey,
        identityColumn(run.coordinator),
      ]);
      const runId = Number(inserted!.id);
      for (let start = 0; start < run.tasks.length; start += TASKS_PER_INSERT) {
        const tasks = run.tasks.slice(start, start + TASKS_PER_INSERT);
        await query(SQL.insertTasks, [
          runId,
          tasks.map((t) => t.index),
          tasks.map((t) => t.name),
          tasks.map((t) => JSON.stringify(t.vars)),
          tasks.map((t) => t.cacheKey),
          tasks.map((t) => t.state),
          tasks.map((t) => t.cpus),
          tasks.map((t) => t.memory),
          tasks.map((t) => t.timeMs),
        ]);
      }
      return { run: toRun(inserted!) };
    });
    // Until the planner learns of many new pending tasks it would sort them all on every claim
    // instead of walking the pending-task index; autovacuum would tell it, but only later.
    if ('run' in created && run.tasks.length >= TASKS_WORTH_ANALYZING) await this.db.query(SQL.analyzeTasks, []);
    return created;
  }

  async claimRun(runId: number, coordinator: ProcessIdentity, isAlive: (holder: ProcessIdentity) => boolean): Promise<ProcessIdentity | null> {
    return this.db.transaction(async (query) => {
      const [row] = await query(SQL.lockRun, [runId]);
      const holder = toIdentity(row?.coordinator);
      if (holder && !sameProcess(holder, coordinator) && isAlive(holder)) return holder;
      await query(SQL.setCoordinator, [runId, identityColumn(coordinator)]);
      return null;
    });
  }

  async releaseRun(runId: number, coordinator: ProcessIdentity): Promise<void> {
    await this.db.transaction(async (query) => {
      const [row] = await query(SQL.lockRun, [runId]);
      const holder = toIdentity(row?.coordinator);
      if (holder && sameProcess(holder, coordinator)) await query(SQL.setCoordinator, [runId, null]);
    });
  }

  async setLauncher(runId: number, launcher: ProcessIdentity | null): Promise<void> {
    await this.db.query(SQL.setLauncher, [runId, identityColumn(launcher)]);
  }

  async commit(changes: StateChanges): Promise<CommitOutcome> {
    const statements: Array<[Statement<unknown>, unknown[]]> = [];
    const launches = changes.launches ?? [];
    if (launches.length > 0) {
      statements.push([
        SQL.launch,
        [
          launches.map((l) => l.runId),
          launches.map((l) => l.index),
          launches.map((l) => l.attempt),
          launches.map((l) => l.dir),
          launches.map((l) => l.memory),
          launches.map((l) => l.timeMs),
          launches.map((l) => l.launchedAt),
          launches.map((l) => identityColumn(l.launcher ?? null)),
        ],
      ]);
    }
    const results = changes.results ?? [];
    if (results.length > 0) {
      statements.push([
        SQL.finish,
        [
          results.map((r) => r.runId),
          results.map((r) => r.index),
          results.map((r) => r.attempt),
          results.map((r) => r.result.reason),
          results.map((r) => r.result.exitCode),
          results.map((r) => r.result.signal),
          results.map((r) => r.result.startedAt),
          results.map((r) => r.result.endedAt),
          results.map((r) => r.result.peakMemory),
          results.map((r) => r.result.cpuMs),
          results.map((r) => r.result.host),
          results.map((r) => r.result.error ?? null),
          results.map((r) => r.task.state),
          results.map((r) => r.task.memory),
          results.map((r) => r.task.timeMs),
          results.map((r) => r.task.retryBase),
          results.map((r) => r.task.platformFailures),
          results.map((r) => durationOf(r.result)),
          results.map((r) => r.cache?.key ?? null),
          results.map((r) => r.cache?.runId ?? null),
          results.map((r) => r.cache?.index ?? null),
          results.map((r) => r.cache?.attempt ?? null),
          results.map((r) => r.cache?.out ?? null),
        ],
      ]);
    }
    const taskStates = changes.taskStates ?? [];
    if (taskStates.length > 0) {
      statements.push([
        SQL.setTaskStates,
        [taskStates.map((t) => t.runId), taskStates.map((t) => t.index), taskStates.map((t) => t.state), taskStates.map((t) => t.resetRetries === true)],
      ]);
    }
    const run = changes.run;
    if (run && (run.state !== undefined || run.gatherState !== undefined)) {
      statements.push([SQL.updateRun, [run.id, run.state !== undefined, run.state ?? null, run.endedAt ?? null, run.gatherState !== undefined, run.gatherState ?? null]]);
    }
    // One statement is a transaction of its own: a worker's usual commit is one round trip.
    let ended: EndedRow[] = [];
    const keep = (statement: Statement<unknown>, rows: unknown[]) => {
      if (statement === SQL.finish) ended = rows as EndedRow[];
    };
    if (statements.length === 1) keep(statements[0]![0], await this.db.query(...statements[0]!));
    else if (statements.length > 1) {
      await this.db.transaction(async (query) => {
        for (const [statement, values] of statements) keep(statement, await query(statement, values));
      });
    }
    const endedKeys = new Set(ended.map((row) => `${row.run_id}.${row.idx}.${row.attempt}`));
    return { appliedResults: results.filter((r) => endedKeys.has(`${r.runId}.${r.index}.${r.attempt}`)) };
  }

  async startGather(runId: number, start: GatherStart): Promise<GatherAttemptRecord | null> {
    return this.db.transaction(async (query) => {
      // The run's row is the guard: whoever starts its gather (or a worker claiming it) holds it until commit.
      const [run] = await query(SQL.lockRunForGather, [runId]);
      if (!run) throw new Error(`the store has no run ${runId}`);
      const [gathers] = await query(SQL.gathersOfRun, [runId]);
      if (gathers!.running) return null;
      const attempt = Number(gathers!.last) + 1;
      const [started] = await query(SQL.startGather, [runId, attempt, start.dir(attempt), start.launchedAt, identityColumn(start.launcher ?? null)]);
      return toGatherAttempt(started!);
    });
  }

  async endGather(end: GatherEnd): Promise<boolean> {
    const r = end.result;
    const [ended] = await this.db.query(SQL.endGather, [
      end.runId,
      end.attempt,
      r.reason,
      r.exitCode,
      r.signal,
      r.startedAt,
      r.endedAt,
      r.peakMemory,
      r.cpuMs,
      r.host,
      r.error ?? null,
      r.reason === 'ok' ? (end.cacheKey ?? null) : null,
      end.gatherState,
    ]);
    return Number(ended?.n ?? 0) > 0;
  }
}

type EndedRow = { run_id: DbNumber; idx: number; attempt: number };

/** Big enough to record 100,000 tasks in a few statements, small enough to keep each one's arrays modest. */
const TASKS_PER_INSERT = 10_000;
const TASKS_WORTH_ANALYZING = 1_000;
/** Advisory lock key space of starting a job's run (with a hash of the job name). */
const JOB_LOCK_SPACE = 0x66616e70;

const SQL = {
  lockJob: statement('lock_job', 'SELECT pg_advisory_xact_lock($1, hashtext($2))'),
  runningRunsOfJob: statement<Pick<RunRow, 'coordinator'>>('running_runs_of_job', `SELECT coordinator FROM runs WHERE job = $1 AND state = 'running'`),
  insertRun: statement<RunRow>(
    'insert_run',
    `
    INSERT INTO runs (job, job_file, spec, backend, dispatch, state, created_at, plan_key, coordinator)
    VALUES ($1, $2, $3, $4, $5, 'running', ${NOW_MS}, $6, $7) RETURNING *`,
  ),
  insertTasks: statement(
    'insert_tasks',
    `
    INSERT INTO tasks (run_id, idx, name, vars, cache_key, state, cpus, memory, time_ms)
    SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::bigint[], $9::bigint[])`,
  ),
  analyzeTasks: statement('analyze_tasks', 'ANALYZE tasks'),
  lockRun: statement<Pick<RunRow, 'coordinator'>>('lock_run', 'SELECT coordinator FROM runs WHERE id = $1 FOR UPDATE'),
  setCoordinator: statement('set_coordinator', 'UPDATE runs SET coordinator = $2 WHERE id = $1'),
  setLauncher: statement('set_launcher', 'UPDATE runs SET launcher = $2 WHERE id = $1'),

  // Batches may name one task twice; as in a sequence of single changes, the last one stands.
  launch: statement(
    'launch',
    `
    WITH l AS (
      SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[])
        WITH ORDINALITY AS l(run_id, idx, attempt, dir, memory, time_ms, launched_at, launcher, n)
    ), launched AS (
      INSERT INTO attempts (run_id, idx, attempt, state, dir, memory, time_ms, launched_at, launcher)
      SELECT run_id, idx, attempt, 'running', dir, memory, time_ms, launched_at, launcher FROM l
    )
    UPDATE tasks t SET state = 'running', attempts = l.attempt
    FROM (SELECT DISTINCT ON (run_id, idx) * FROM l ORDER BY run_id, idx, n DESC) l
    WHERE t.run_id = l.run_id AND t.idx = l.idx`,
  ),
  // A result applies only while its attempt is running: one already ended keeps its first outcome.
  finish: statement(
    'finish',
    `
    WITH r AS (
      SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[], $5::int[], $6::text[], $7::bigint[], $8::bigint[],
                           $9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::bigint[],
                           $16::int[], $17::int[], $18::bigint[], $19::text[], $20::bigint[], $21::int[], $22::int[], $23::text[])
        WITH ORDINALITY AS r(run_id, idx, attempt, reason, exit_code, signal, started_at, ended_at,
                             peak_memory, cpu_ms, host, error, task_state, task_memory, task_time_ms,
                             retry_base, platform_failures, duration_ms, cache_key, cache_run_id, cache_idx, cache_attempt, cache_out, n)
    ), ended AS (
      UPDATE attempts a SET state = 'done', reason = r.reason, exit_code = r.exit_code, signal = r.signal,
        started_at = r.started_at, ended_at = r.ended_at, peak_memory = r.peak_memory, cpu_ms = r.cpu_ms,
        host = r.host, error = r.error, lease_expires = NULL
      FROM r
      WHERE a.run_id = r.run_id AND a.idx = r.idx AND a.attempt = r.attempt AND a.state = 'running'
      RETURNING r.*
    ), finished AS (
      UPDATE tasks t SET state = e.task_state, memory = e.task_memory, time_ms = e.task_time_ms, retry_base = e.retry_base,
        platform_failures = e.platform_failures, reason = e.reason, exit_code = e.exit_code, peak_memory = e.peak_memory, duration_ms = e.duration_ms
      FROM (SELECT DISTINCT ON (run_id, idx) * FROM ended ORDER BY run_id, idx, n DESC) e
      WHERE t.run_id = e.run_id AND t.idx = e.idx
    ), cached AS (
      INSERT INTO cache (key, run_id, idx, attempt, out)
      SELECT DISTINCT ON (cache_key) cache_key, cache_run_id, cache_idx, cache_attempt, cache_out
      FROM ended WHERE cache_key IS NOT NULL ORDER BY cache_key, n DESC
      ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id, idx = excluded.idx, attempt = excluded.attempt, out = excluded.out
    )
    -- Data-modifying parts of a WITH run to completion whether or not this reads them.
    SELECT run_id, idx, attempt FROM ended`,
  ),
  setTaskStates: statement(
    'set_task_states',
    `
    UPDATE tasks t SET state = u.state, retry_base = CASE WHEN u.reset THEN t.attempts ELSE t.retry_base END,
      platform_failures = CASE WHEN u.reset THEN 0 ELSE t.platform_failures END
    FROM (
      SELECT DISTINCT ON (run_id, idx) * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::boolean[])
        WITH ORDINALITY AS u(run_id, idx, state, reset, n)
      ORDER BY run_id, idx, n DESC
    ) u
    WHERE t.run_id = u.run_id AND t.idx = u.idx`,
  ),
  updateRun: statement(
    'update_run',
    `
    UPDATE runs SET
      state = CASE WHEN $2 THEN $3::text ELSE state END,
      ended_at = CASE WHEN $2 THEN $4::bigint ELSE ended_at END,
      gather_state = CASE WHEN $5 THEN $6::text ELSE gather_state END
    WHERE id = $1`,
  ),

  lockRunForGather: statement<Pick<RunRow, 'id'>>('lock_run_for_gather', 'SELECT id FROM runs WHERE id = $1 FOR UPDATE'),
  gathersOfRun: statement<{ last: number; running: boolean }>(
    'gathers_of_run',
    `
    SELECT coalesce(max(attempt), 0) AS last, coalesce(bool_or(state = 'running'), false) AS running FROM gathers WHERE run_id = $1`,
  ),
  startGather: statement<GatherRow>(
    'start_gather',
    `
    WITH started AS (
      INSERT INTO gathers (run_id, attempt, state, dir, launched_at, launcher) VALUES ($1, $2, 'running', $3, $4, $5) RETURNING *
    ), gathering AS (
      UPDATE runs SET gather_state = 'running' WHERE id = $1
    )
    SELECT * FROM started`,
  ),
  // One statement: the attempt ends only while it runs, and the run's gather state with it.
  endGather: statement<{ n: DbNumber }>(
    'end_gather',
    `
    WITH ended AS (
      UPDATE gathers SET state = 'done', reason = $3, exit_code = $4, signal = $5, started_at = $6, ended_at = $7,
        peak_memory = $8, cpu_ms = $9, host = $10, error = $11, lease_expires = NULL, cache_key = $12
      WHERE run_id = $1 AND attempt = $2 AND state = 'running'
      RETURNING run_id
    ), gathered AS (
      UPDATE runs r SET gather_state = $13 FROM ended WHERE r.id = ended.run_id
    )
    SELECT count(*) AS n FROM ended`,
  ),
};
