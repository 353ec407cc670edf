import { createHash, randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import pg from 'pg';
import { UserError } from '../../errors.js';
import type { JobSpec } from '../../job/job-spec.js';
import { candidateWindow, canClaim, GATHER_CPUS, perTaskLimit, pickFitting, type ClaimCandidate } from '../claim-plan.js';
import { durationOf, identityColumn, sameProcess, toAttempt, toIdentity, toRun, toSpan, toTask, toWorker, type Row } from '../rows.js';
import { taskPageClauses, type TaskPage, type TaskPageQuery } from '../task-page.js';
import {
  GATHER_INDEX,
  TASK_STATES,
  type AttemptKey,
  type AttemptSpan,
  type AttemptRecord,
  type CacheEntry,
  type ClaimedAttempt,
  type ClaimRequest,
  type CommitOutcome,
  type NewWorker,
  type ProcessIdentity,
  type ResultChange,
  type RunRecord,
  type StateChanges,
  type Store,
  type TaskCounts,
  type TaskRecord,
  type TaskState,
  type WorkerRecord,
} from '../store.js';
import { MIGRATIONS } from './migrations.js';

/**
 * The shared store: one PostgreSQL database that coordinators and pull workers on many machines
 * use at once. Every method is a few round trips whatever the batch size (multi-row statements
 * over arrays, prepared once per connection); a claim locks the pending tasks it reads with
 * SKIP LOCKED so concurrent workers pass each other by; leases and times come from the server's
 * clock so machines whose clocks disagree still agree on when a lease runs out.
 */
export class PostgresStore implements Store {
  /** Run specs never change; a claim needs them for every attempt's folder. */
  private readonly specs = new Map<number, JobSpec>();

  private constructor(
    private readonly pool: pg.Pool,
    /** The first characters of the id the store drew when it was created. */
    readonly id: string,
  ) {}

  /** Connect, and bring the schema up to date (or refuse one written by a newer fanout). */
  static async open(url: string): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: url,
      max: 4,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 60_000,
      // The store's statements are prepared once per connection and run thousands of times with
      // the same shape; planning each run anew took about a third of the server's CPU per task
      // (bench/workers.mjs). An `options` parameter in the URL replaces this one.
      options: '-c plan_cache_mode=force_generic_plan',
    });
    // A pooled connection that drops while idle is replaced on next use; nothing to report then.
    pool.on('error', () => undefined);
    try {
      const client = await pool.connect().catch((error: unknown) => {
        throw connectionProblem(error, url);
      });
      try {
        const storeId = await migrate(client, url);
        return new PostgresStore(pool, storeId.slice(0, 8));
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end();
      throw error;
    }
  }

  async createRun(run: Parameters<Store['createRun']>[0], isAlive: (holder: ProcessIdentity) => boolean): Promise<{ run: RunRecord } | { heldBy: ProcessIdentity }> {
    const created = await this.transaction(async (query) => {
      // Two coordinators starting the same job at once queue here, so they cannot both see it free.
      await query(SQL.lockJob, [JOB_LOCK_SPACE, run.job]);
      for (const row of await query(SQL.runningRunsOfJob, [run.job])) {
        const holder = toIdentity(row.coordinator);
        if (holder && !sameProcess(holder, run.coordinator) && isAlive(holder)) return { heldBy: holder };
      }
      const [inserted] = await query(SQL.insertRun, [
        run.job, run.jobFile, JSON.stringify(run.spec), run.backend, run.planKey, identityColumn(run.coordinator),
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
    if ('run' in created && run.tasks.length >= TASKS_WORTH_ANALYZING) await this.query(SQL.analyzeTasks, []);
    return created;
  }

  async claimRun(runId: number, coordinator: ProcessIdentity, isAlive: (holder: ProcessIdentity) => boolean): Promise<ProcessIdentity | null> {
    return this.transaction(async (query) => {
      const [row] = await query(SQL.lockRun, [runId]);
      const holder = toIdentity(row?.coordinator);
      if (holder && !sameProcess(holder, coordinator) && isAlive(holder)) return holder;
      await query(SQL.setCoordinator, [runId, identityColumn(coordinator)]);
      return null;
    });
  }

  async releaseRun(runId: number, coordinator: ProcessIdentity): Promise<void> {
    await this.transaction(async (query) => {
      const [row] = await query(SQL.lockRun, [runId]);
      const holder = toIdentity(row?.coordinator);
      if (holder && sameProcess(holder, coordinator)) await query(SQL.setCoordinator, [runId, null]);
    });
  }

  async setLauncher(runId: number, launcher: ProcessIdentity | null): Promise<void> {
    await this.query(SQL.setLauncher, [runId, identityColumn(launcher)]);
  }

  async commit(changes: StateChanges): Promise<CommitOutcome> {
    const statements: Array<[Statement, unknown[]]> = [];
    const launches = changes.launches ?? [];
    if (launches.length > 0) {
      statements.push([SQL.launch, [
        launches.map((l) => l.runId),
        launches.map((l) => l.index),
        launches.map((l) => l.attempt),
        launches.map((l) => l.dir),
        launches.map((l) => l.memory),
        launches.map((l) => l.timeMs),
        launches.map((l) => l.launchedAt),
      ]]);
    }
    const results = changes.results ?? [];
    if (results.length > 0) {
      statements.push([SQL.finish, [
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
        results.map((r) => durationOf(r.result)),
        results.map((r) => r.cache?.key ?? null),
        results.map((r) => r.cache?.runId ?? null),
        results.map((r) => r.cache?.index ?? null),
        results.map((r) => r.cache?.attempt ?? null),
        results.map((r) => r.cache?.out ?? null),
      ]]);
    }
    const taskStates = changes.taskStates ?? [];
    if (taskStates.length > 0) {
      statements.push([SQL.setTaskStates, [
        taskStates.map((t) => t.runId),
        taskStates.map((t) => t.index),
        taskStates.map((t) => t.state),
        taskStates.map((t) => t.resetRetries === true),
      ]]);
    }
    const run = changes.run;
    if (run && (run.state !== undefined || run.gatherState !== undefined)) {
      statements.push([SQL.updateRun, [
        run.id, run.state !== undefined, run.state ?? null, run.endedAt ?? null, run.gatherState !== undefined, run.gatherState ?? null,
      ]]);
    }
    // One statement is a transaction of its own: a worker's usual commit is one round trip.
    let ended: Row[] = [];
    const keep = (statement: Statement, rows: Row[]) => {
      if (statement === SQL.finish) ended = rows;
    };
    if (statements.length === 1) keep(statements[0]![0], await this.query(...statements[0]!));
    else if (statements.length > 1) {
      await this.transaction(async (query) => {
        for (const [statement, values] of statements) keep(statement, await query(statement, values));
      });
    }
    const endedKeys = new Set(ended.map((row) => `${row.run_id}.${row.idx}.${row.attempt}`));
    return { appliedResults: results.filter((r) => endedKeys.has(`${r.runId}.${r.index}.${r.attempt}`)) };
  }

  async getRun(id: number): Promise<RunRecord | null> {
    const [row] = await this.query(SQL.getRun, [id]);
    return row ? toRun(row) : null;
  }

  async listRuns(options: { job?: string; limit?: number } = {}): Promise<RunRecord[]> {
    const rows = await this.query(SQL.listRuns, [options.job ?? null, options.limit ?? null]);
    return rows.map(toRun);
  }

  async counts(runId: number): Promise<TaskCounts> {
    const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as TaskCounts;
    for (const row of await this.query(SQL.counts, [runId])) counts[row.state as TaskState] = Number(row.n);
    return counts;
  }

  async listTasks(runId: number, options: { state?: TaskState } = {}): Promise<TaskRecord[]> {
    const rows = options.state ? await this.query(SQL.listTasksInState, [runId, options.state]) : await this.query(SQL.listTasks, [runId]);
    return rows.map(toTask);
  }

  async pageTasks(runId: number, query: TaskPageQuery): Promise<TaskPage> {
    const { where, orderBy, parameters } = taskPageClauses(query, { placeholder: (n) => `$${n}`, contains: (column, p) => `strpos(lower(${column}), lower(${p})) > 0` });
    const limitAt = parameters.length + 2;
    // Built from fixed pieces (see task-page.ts); named by its text so each shape is prepared once per connection.
    const countText = `SELECT count(*) AS n FROM tasks WHERE ${where}`;
    const pageText = `SELECT t.*, (SELECT host FROM attempts a WHERE a.run_id = t.run_id AND a.idx = t.idx AND a.attempt = t.attempts) AS host
       FROM tasks t WHERE ${where} ORDER BY ${orderBy} LIMIT $${limitAt} OFFSET $${limitAt + 1}`;
    const [[total], rows] = await Promise.all([
      this.query(statement(`task_count_${shapeName(countText)}`, countText), [runId, ...parameters]),
      this.query(statement(`task_page_${shapeName(pageText)}`, pageText), [runId, ...parameters, query.limit, query.offset]),
    ]);
    return { total: Number(total?.n ?? 0), tasks: rows.map((row) => ({ ...toTask(row), host: (row.host as string | null) ?? null })) };
  }

  async attemptSpans(runId: number): Promise<AttemptSpan[]> {
    return (await this.query(SQL.attemptSpans, [runId])).map(toSpan);
  }

  async getTask(runId: number, name: string): Promise<TaskRecord | null> {
    const [row] = await this.query(SQL.getTask, [runId, name]);
    return row ? toTask(row) : null;
  }

  async attempts(runId: number, index: number): Promise<AttemptRecord[]> {
    return (await this.query(SQL.attempts, [runId, index])).map(toAttempt);
  }

  async runningAttempts(runId: number): Promise<AttemptRecord[]> {
    return (await this.query(SQL.runningAttempts, [runId])).map(toAttempt);
  }

  async lookupCache(keys: string[]): Promise<Map<string, CacheEntry>> {
    const found = new Map<string, CacheEntry>();
    if (keys.length === 0) return found;
    for (const row of await this.query(SQL.lookupCache, [keys])) {
      const key = String(row.key);
      found.set(key, { key, runId: Number(row.run_id), index: Number(row.idx), attempt: Number(row.attempt), out: String(row.out) });
    }
    return found;
  }

  async registerWorker(worker: NewWorker): Promise<void> {
    await this.query(SQL.registerWorker, [worker.id, worker.host, worker.pid, worker.cpus, worker.memory, worker.launchedBy]);
  }

  async listWorkers(options: { all?: boolean } = {}): Promise<WorkerRecord[]> {
    return (await this.query(SQL.listWorkers, [options.all === true])).map(toWorker);
  }

  async retireWorker(workerId: string): Promise<void> {
    await this.query(SQL.retireWorker, [workerId]);
  }

  async claim(request: ClaimRequest): Promise<ClaimedAttempt[]> {
    if (!canClaim(request)) return [];
    return this.transaction(async (query) => {
      const candidates = (await query(SQL.claimCandidates, [perTaskLimit(request).cpus, perTaskLimit(request).memory, Math.floor(request.limit), candidateWindow(request)])).map(
        (row): ClaimCandidate => ({ runId: Number(row.run_id), index: Number(row.idx), attempt: Number(row.attempts) + 1, cpus: Number(row.cpus), memory: row.memory === null ? null : Number(row.memory) }),
      );
      const chosen = pickFitting(candidates, request);
      if (chosen.length === 0) return [];
      const unknownSpecs = [...new Set(chosen.map((c) => c.runId))].filter((runId) => !this.specs.has(runId));
      if (unknownSpecs.length > 0) {
        for (const row of await query(SQL.specs, [unknownSpecs])) this.specs.set(Number(row.id), JSON.parse(String(row.spec)) as JobSpec);
      }
      const dirs = chosen.map((c) => request.attemptDir({ id: c.runId, spec: this.specs.get(c.runId)! }, c.index, c.attempt));
      const claimedTasks = await query(SQL.claim, [
        chosen.map((c) => c.runId), chosen.map((c) => c.index), chosen.map((c) => c.attempt), dirs, request.workerId, request.leaseMs,
      ]);
      const tasks = new Map(claimedTasks.map((row) => [`${row.run_id}:${row.idx}`, toTask(row)]));
      return chosen.map((c, i): ClaimedAttempt => {
        const dir = dirs[i]!;
        if (c.index === GATHER_INDEX) return { kind: 'gather', runId: c.runId, attempt: c.attempt, dir };
        return { kind: 'task', runId: c.runId, task: tasks.get(`${c.runId}:${c.index}`)!, attempt: c.attempt, dir };
      });
    });
  }

  async heartbeat(workerId: string, holding: AttemptKey[], leaseMs: number): Promise<AttemptKey[]> {
    const rows = await this.query(SQL.heartbeat, [
      workerId, holding.map((h) => h.runId), holding.map((h) => h.index), holding.map((h) => h.attempt), leaseMs,
    ]);
    return rows.map((row) => ({ runId: Number(row.run_id), index: Number(row.idx), attempt: Number(row.attempt) }));
  }

  async expiredAttempts(limit: number): Promise<AttemptRecord[]> {
    return (await this.query(SQL.expiredAttempts, [limit])).map(toAttempt);
  }

  async settleRun(runId: number, options: { hasGather: boolean }): Promise<'gather-queued' | 'succeeded' | 'failed' | null> {
    // Most calls come while tasks are still out: one unlocked look says so without a transaction.
    const [look] = await this.query(SQL.settleLook, [runId]);
    if (!settleable(look)) return null;
    return this.transaction(async (query) => {
      // Lock the run first, then look again: what its tasks are now, after any settler before us.
      await query(SQL.lockRun, [runId]);
      const [run] = await query(SQL.runOutcome, [runId]);
      if (!settleable(run)) return null;
      const gather = run!.gather_state as RunRecord['gatherState'];
      const allSucceeded = run!.unsuccessful === false;
      if (options.hasGather && allSucceeded && gather === null) {
        await query(SQL.updateRun, [runId, false, null, null, true, 'pending']);
        return 'gather-queued';
      }
      const state = allSucceeded && gather !== 'failed' ? 'succeeded' : 'failed';
      await query(SQL.endRun, [runId, state]);
      return state;
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** One statement on any pooled connection: a transaction of its own. */
  private async query(statement: Statement, values: unknown[]): Promise<Row[]> {
    return retryingDeadlocks(async () => (await this.pool.query({ ...statement, values })).rows as Row[]);
  }

  /** Statements on one connection in one transaction, all or nothing. */
  private async transaction<T>(work: (query: (statement: Statement, values: unknown[]) => Promise<Row[]>) => Promise<T>): Promise<T> {
    return retryingDeadlocks(async () => {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await work(async (statement, values) => (await client.query({ ...statement, values })).rows as Row[]);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackFailed: Error) => {
          broken = rollbackFailed;
        });
        throw error;
      } finally {
        client.release(broken);
      }
    });
  }
}

/** Whether a run (with whether any task is unfinished or unsuccessful) can end or queue its gather. */
function settleable(run: Row | undefined): boolean {
  return run !== undefined && run.state === 'running' && run.gather_state !== 'pending' && run.gather_state !== 'running' && run.unfinished === false;
}

const CONNECT_TIMEOUT_MS = 5_000;
/** Big enough to record 100,000 tasks in a few statements, small enough to keep each one's arrays modest. */
const TASKS_PER_INSERT = 10_000;
const TASKS_WORTH_ANALYZING = 1_000;
/** Advisory lock keys: the schema migration, and (with a hash of the job name) starting a job's run. */
const SCHEMA_LOCK = 0x66616e6f;
const JOB_LOCK_SPACE = 0x66616e70;

/** The server's clock in ms since the epoch; one value for the whole statement. */
const NOW_MS = '(extract(epoch FROM statement_timestamp()) * 1000)::bigint';

/** A prepared statement: its name makes each connection parse and plan it once. */
interface Statement {
  name: string;
  text: string;
}

const statement = (name: string, text: string): Statement => ({ name: `fanout_${name}`, text });

/** A short name for one shape of a query built from fixed pieces. */
const shapeName = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

const SQL = {
  lockJob: statement('lock_job', 'SELECT pg_advisory_xact_lock($1, hashtext($2))'),
  runningRunsOfJob: statement('running_runs_of_job', `SELECT coordinator FROM runs WHERE job = $1 AND state = 'running'`),
  insertRun: statement('insert_run', `
    INSERT INTO runs (job, job_file, spec, backend, state, created_at, plan_key, coordinator)
    VALUES ($1, $2, $3, $4, 'running', ${NOW_MS}, $5, $6) RETURNING *`),
  insertTasks: statement('insert_tasks', `
    INSERT INTO tasks (run_id, idx, name, vars, cache_key, state, cpus, memory, time_ms)
    SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::bigint[], $9::bigint[])`),
  analyzeTasks: statement('analyze_tasks', 'ANALYZE tasks'),
  lockRun: statement('lock_run', 'SELECT coordinator FROM runs WHERE id = $1 FOR UPDATE'),
  setCoordinator: statement('set_coordinator', 'UPDATE runs SET coordinator = $2 WHERE id = $1'),
  setLauncher: statement('set_launcher', 'UPDATE runs SET launcher = $2 WHERE id = $1'),
  getRun: statement('get_run', 'SELECT * FROM runs WHERE id = $1'),
  specs: statement('specs', 'SELECT id, spec FROM runs WHERE id = ANY($1::bigint[])'),
  listRuns: statement('list_runs', 'SELECT * FROM runs WHERE $1::text IS NULL OR job = $1 ORDER BY id DESC LIMIT $2'),
  counts: statement('counts', 'SELECT state, count(*) AS n FROM tasks WHERE run_id = $1 GROUP BY state'),
  listTasks: statement('list_tasks', 'SELECT * FROM tasks WHERE run_id = $1 ORDER BY idx'),
  listTasksInState: statement('list_tasks_in_state', 'SELECT * FROM tasks WHERE run_id = $1 AND state = $2 ORDER BY idx'),
  getTask: statement('get_task', 'SELECT * FROM tasks WHERE run_id = $1 AND name = $2'),
  attempts: statement('attempts', 'SELECT * FROM attempts WHERE run_id = $1 AND idx = $2 ORDER BY attempt'),
  attemptSpans: statement('attempt_spans', 'SELECT idx, launched_at, started_at, ended_at, reason, memory, peak_memory FROM attempts WHERE run_id = $1 AND idx >= 0'),
  runningAttempts: statement('running_attempts', `SELECT * FROM attempts WHERE run_id = $1 AND state = 'running' ORDER BY idx, attempt`),
  lookupCache: statement('lookup_cache', 'SELECT * FROM cache WHERE key = ANY($1::text[])'),

  // Batches may name one task twice; as in a sequence of single changes, the last one stands.
  launch: statement('launch', `
    WITH l AS (
      SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[])
        WITH ORDINALITY AS l(run_id, idx, attempt, dir, memory, time_ms, launched_at, n)
    ), launched AS (
      INSERT INTO attempts (run_id, idx, attempt, state, dir, memory, time_ms, launched_at)
      SELECT run_id, idx, attempt, 'running', dir, memory, time_ms, launched_at FROM l
    )
    UPDATE tasks t SET state = 'running', attempts = l.attempt
    FROM (SELECT DISTINCT ON (run_id, idx) * FROM l ORDER BY run_id, idx, n DESC) l
    WHERE t.run_id = l.run_id AND t.idx = l.idx`),
  // A result applies only while its attempt is running: one already ended keeps its first outcome.
  finish: statement('finish', `
    WITH r AS (
      SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[], $5::int[], $6::text[], $7::bigint[], $8::bigint[],
                           $9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::bigint[],
                           $16::int[], $17::bigint[], $18::text[], $19::bigint[], $20::int[], $21::int[], $22::text[])
        WITH ORDINALITY AS r(run_id, idx, attempt, reason, exit_code, signal, started_at, ended_at,
                             peak_memory, cpu_ms, host, error, task_state, task_memory, task_time_ms,
                             retry_base, duration_ms, cache_key, cache_run_id, cache_idx, cache_attempt, cache_out, n)
    ), ended AS (
      UPDATE attempts a SET state = 'done', reason = r.reason, exit_code = r.exit_code, signal = r.signal,
        started_at = r.started_at, ended_at = r.ended_at, peak_memory = r.peak_memory, cpu_ms = r.cpu_ms,
        host = r.host, error = r.error, lease_expires = NULL
      FROM r
      WHERE a.run_id = r.run_id AND a.idx = r.idx AND a.attempt = r.attempt AND a.state = 'running'
      RETURNING r.*
    ), finished AS (
      UPDATE tasks t SET state = e.task_state, memory = e.task_memory, time_ms = e.task_time_ms, retry_base = e.retry_base,
        reason = e.reason, exit_code = e.exit_code, peak_memory = e.peak_memory, duration_ms = e.duration_ms
      FROM (SELECT DISTINCT ON (run_id, idx) * FROM ended ORDER BY run_id, idx, n DESC) e
      WHERE t.run_id = e.run_id AND t.idx = e.idx
    ), cached AS (
      INSERT INTO cache (key, run_id, idx, attempt, out)
      SELECT DISTINCT ON (cache_key) cache_key, cache_run_id, cache_idx, cache_attempt, cache_out
      FROM ended WHERE cache_key IS NOT NULL ORDER BY cache_key, n DESC
      ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id, idx = excluded.idx, attempt = excluded.attempt, out = excluded.out
    )
    -- Data-modifying parts of a WITH run to completion whether or not this reads them.
    SELECT run_id, idx, attempt FROM ended`),
  setTaskStates: statement('set_task_states', `
    UPDATE tasks t SET state = u.state, retry_base = CASE WHEN u.reset THEN t.attempts ELSE t.retry_base END
    FROM (
      SELECT DISTINCT ON (run_id, idx) * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::boolean[])
        WITH ORDINALITY AS u(run_id, idx, state, reset, n)
      ORDER BY run_id, idx, n DESC
    ) u
    WHERE t.run_id = u.run_id AND t.idx = u.idx`),
  updateRun: statement('update_run', `
    UPDATE runs SET
      state = CASE WHEN $2 THEN $3::text ELSE state END,
      ended_at = CASE WHEN $2 THEN $4::bigint ELSE ended_at END,
      gather_state = CASE WHEN $5 THEN $6::text ELSE gather_state END
    WHERE id = $1`),
  endRun: statement('end_run', `UPDATE runs SET state = $2, ended_at = ${NOW_MS} WHERE id = $1`),
  settleLook: statement('settle_look', `
    SELECT state, gather_state,
      EXISTS (SELECT 1 FROM tasks WHERE run_id = $1 AND state IN ('pending', 'running')) AS unfinished
    FROM runs WHERE id = $1`),
  runOutcome: statement('run_outcome', `
    SELECT state, gather_state,
      EXISTS (SELECT 1 FROM tasks WHERE run_id = $1 AND state IN ('pending', 'running')) AS unfinished,
      EXISTS (SELECT 1 FROM tasks WHERE run_id = $1 AND state IN ('failed', 'cancelled')) AS unsuccessful
    FROM runs WHERE id = $1`),

  registerWorker: statement('register_worker', `
    INSERT INTO workers (id, host, pid, cpus, memory, launched_by, state, started_at, heartbeat_at)
    VALUES ($1, $2, $3, $4, $5, $6, 'running', ${NOW_MS}, ${NOW_MS})
    ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, cpus = excluded.cpus,
      memory = excluded.memory, launched_by = excluded.launched_by, state = 'running', heartbeat_at = excluded.heartbeat_at`),
  listWorkers: statement('list_workers', `
    SELECT w.*, (SELECT count(*) FROM attempts a WHERE a.worker = w.id AND a.state = 'running') AS holding
    FROM workers w WHERE $1 OR w.state = 'running' ORDER BY w.started_at DESC, w.seq DESC`),
  // Anything it still claimed is lost with it: reapable now rather than when the lease runs out.
  retireWorker: statement('retire_worker', `
    WITH retired AS (UPDATE workers SET state = 'stopped', heartbeat_at = ${NOW_MS} WHERE id = $1)
    UPDATE attempts SET lease_expires = ${NOW_MS} WHERE worker = $1 AND state = 'running'`),
  claimCandidates: statement('claim_candidates', `
    WITH gathers AS (
      SELECT id FROM runs
      WHERE state = 'running' AND backend = 'workers' AND gather_state = 'pending'
      ORDER BY id LIMIT $3
      FOR UPDATE SKIP LOCKED
    )
    SELECT g.id AS run_id, ${GATHER_INDEX} AS idx, ${GATHER_CPUS} AS cpus, NULL::bigint AS memory, 0 AS queue,
      (SELECT count(*) FROM attempts a WHERE a.run_id = g.id AND a.idx = ${GATHER_INDEX}) AS attempts
    FROM gathers g
    UNION ALL (
      SELECT t.run_id, t.idx, t.cpus, t.memory, 1 AS queue, t.attempts
      FROM runs r CROSS JOIN LATERAL (
        SELECT t.run_id, t.idx, t.cpus, t.memory, t.attempts FROM tasks t
        WHERE t.run_id = r.id AND t.state = 'pending' AND t.cpus <= $1::float8 AND coalesce(t.memory, 0) <= $2::float8
        ORDER BY t.idx LIMIT $4
        FOR UPDATE SKIP LOCKED
      ) t
      WHERE r.state = 'running' AND r.backend = 'workers'
      ORDER BY r.id, t.idx LIMIT $4
    )
    ORDER BY queue, run_id, idx`),
  claim: statement('claim', `
    WITH c AS (
      SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[]) AS c(run_id, idx, attempt, dir)
    ), claimed AS (
      UPDATE tasks t SET state = 'running', attempts = c.attempt FROM c
      WHERE t.run_id = c.run_id AND t.idx = c.idx
      RETURNING t.*
    ), gathering AS (
      UPDATE runs r SET gather_state = 'running' FROM c WHERE r.id = c.run_id AND c.idx = ${GATHER_INDEX}
    ), launched AS (
      INSERT INTO attempts (run_id, idx, attempt, state, dir, memory, time_ms, launched_at, worker, lease_expires)
      SELECT c.run_id, c.idx, c.attempt, 'running', c.dir, t.memory, t.time_ms, ${NOW_MS}, $5, ${NOW_MS} + $6::bigint
      FROM c LEFT JOIN tasks t ON t.run_id = c.run_id AND t.idx = c.idx
    )
    SELECT * FROM claimed`),
  heartbeat: statement('heartbeat', `
    WITH held AS (
      SELECT * FROM unnest($2::bigint[], $3::int[], $4::int[]) AS h(run_id, idx, attempt)
    ), beat AS (
      UPDATE workers SET heartbeat_at = ${NOW_MS} WHERE id = $1
    ), extended AS (
      UPDATE attempts a SET lease_expires = ${NOW_MS} + $5::bigint FROM held h
      WHERE a.run_id = h.run_id AND a.idx = h.idx AND a.attempt = h.attempt AND a.state = 'running' AND a.worker = $1
      RETURNING a.run_id, a.idx, a.attempt
    )
    SELECT h.run_id, h.idx, h.attempt FROM held h
    WHERE NOT EXISTS (
      SELECT 1 FROM extended e JOIN runs r ON r.id = e.run_id
      WHERE e.run_id = h.run_id AND e.idx = h.idx AND e.attempt = h.attempt AND r.state = 'running'
    )`),
  expiredAttempts: statement('expired_attempts', `
    SELECT * FROM attempts WHERE state = 'running' AND lease_expires <= ${NOW_MS}
    ORDER BY lease_expires, run_id, idx LIMIT $1`),
};

/** Apply the migrations the database lacks, one process at a time; returns the store's id. */
async function migrate(client: pg.PoolClient, url: string): Promise<string> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    // Only create when missing: a user without CREATE rights can still open a store made for it.
    const [exists] = (await client.query(`SELECT to_regclass('fanout_schema') IS NOT NULL AS found`)).rows as Row[];
    if (!exists?.found) await client.query('CREATE TABLE fanout_schema (version INTEGER NOT NULL, store_id TEXT NOT NULL)');
    let [schema] = (await client.query('SELECT version, store_id FROM fanout_schema')).rows as Row[];
    if (!schema) {
      schema = { version: 0, store_id: randomBytes(16).toString('hex') };
      await client.query('INSERT INTO fanout_schema (version, store_id) VALUES ($1, $2)', [schema.version, schema.store_id]);
    }
    const current = Number(schema.version);
    if (current > MIGRATIONS.length) {
      throw new UserError(
        `the store ${describePostgresUrl(url)} was written by a newer fanout (schema ${current}, this fanout knows ${MIGRATIONS.length})`,
        'upgrade fanout, or use another store',
      );
    }
    for (let version = current; version < MIGRATIONS.length; version++) await client.query(MIGRATIONS[version]!);
    if (current < MIGRATIONS.length) await client.query('UPDATE fanout_schema SET version = $1', [MIGRATIONS.length]);
    await client.query('COMMIT');
    return String(schema.store_id);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** A store URL fit to print: the password removed. */
export function describePostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    parsed.searchParams.delete('password');
    return parsed.toString();
  } catch {
    return url.replace(/(\/\/[^:/@]*):[^@/]*@/, '$1@');
  }
}

/** What a failed connection means to the user, as one line with its fix; never the password. */
function connectionProblem(error: unknown, url: string): Error {
  const parsed = new URL(url);
  const where = `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}`;
  const user = decodeURIComponent(parsed.username) || process.env.PGUSER || userInfo().username;
  const database = decodeURIComponent(parsed.pathname.slice(1)) || process.env.PGDATABASE || user;
  const code = (error as { code?: string }).code;
  const message = (error as Error).message ?? String(error);
  if (code === '28P01' || code === '28000' || /password must be a string|SASL/.test(message)) {
    return new UserError(`PostgreSQL refused the credentials of user "${user}" at ${where}`, 'check the user and password in the store URL', { cause: error });
  }
  if (code === '3D000') {
    return new UserError(`database "${database}" does not exist at ${where}`, `create it (createdb ${database}) or fix the store URL`, { cause: error });
  }
  const reason = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'no such host',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ETIMEDOUT: `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`,
  }[code ?? ''] ?? (/timeout/i.test(message) ? `no answer within ${CONNECT_TIMEOUT_MS / 1000} s` : message);
  return new UserError(`cannot reach the store at ${describePostgresUrl(url)} (${reason})`, 'check --store / FANOUT_STORE and that PostgreSQL is running', { cause: error });
}

/** PostgreSQL breaks a deadlock by failing one side; that side's whole transaction can simply run again. */
async function retryingDeadlocks<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if ((error as { code?: string }).code !== '40P01' || attempt >= 3) throw error;
    }
  }
}
