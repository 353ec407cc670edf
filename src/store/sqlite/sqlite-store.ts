import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
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
 * The embedded default store: one SQLite file in WAL mode. Its methods are async to share the
 * contract with PostgreSQL, but each runs synchronously; several processes may share the file,
 * and the transactions that read before they write are IMMEDIATE so none of them races another.
 */
export class SqliteStore implements Store {
  /** A hash of the fanout home (the store's folder): the tag earlier fanouts gave its run folders. */
  readonly id: string;
  private readonly db: Database.Database;
  private readonly statements;
  /** Run specs never change; a claim needs them for every attempt's folder. */
  private readonly specs = new Map<number, JobSpec>();
  private readonly pageStatements = new Map<string, Database.Statement>();

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.id = createHash('sha256').update(dirname(path)).digest('hex').slice(0, 8);
    this.db = new Database(path);
    // First: switching a new file to WAL takes a lock that another process may hold a moment.
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives a crash of any process; only a power loss may lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    migrate(this.db, path);
    this.statements = prepareStatements(this.db);
  }

  async createRun(run: Parameters<Store['createRun']>[0], isAlive: (holder: ProcessIdentity) => boolean): Promise<{ run: RunRecord } | { heldBy: ProcessIdentity }> {
    const create = this.db.transaction((): number | ProcessIdentity => {
      for (const row of this.statements.runningRunsOfJob.all(run.job) as Row[]) {
        const holder = toIdentity(row.coordinator);
        if (holder && !sameProcess(holder, run.coordinator) && isAlive(holder)) return holder;
      }
      const { lastInsertRowid } = this.statements.insertRun.run({
        job: run.job,
        job_file: run.jobFile,
        spec: JSON.stringify(run.spec),
        backend: run.backend,
        created_at: Date.now(),
        plan_key: run.planKey,
        coordinator: identityColumn(run.coordinator),
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
    return typeof created === 'number' ? { run: (await this.getRun(created))! } : { heldBy: created };
  }

  async claimRun(runId: number, coordinator: ProcessIdentity, isAlive: (holder: ProcessIdentity) => boolean): Promise<ProcessIdentity | null> {
    const claim = this.db.transaction(() => {
      const row = this.statements.getRun.get(runId) as Row | undefined;
      const holder = toIdentity(row?.coordinator);
      if (holder && !sameProcess(holder, coordinator) && isAlive(holder)) return holder;
      this.statements.setCoordinator.run(identityColumn(coordinator), runId);
      return null;
    });
    // IMMEDIATE takes the write lock before reading, so two claimers cannot both see it free.
    return claim.immediate();
  }

  async releaseRun(runId: number, coordinator: ProcessIdentity): Promise<void> {
    this.db.transaction(() => {
      const row = this.statements.getRun.get(runId) as Row | undefined;
      const holder = toIdentity(row?.coordinator);
      if (holder && sameProcess(holder, coordinator)) this.statements.setCoordinator.run(null, runId);
    }).immediate();
  }

  async setLauncher(runId: number, launcher: ProcessIdentity | null): Promise<void> {
    this.statements.setLauncher.run(identityColumn(launcher), runId);
  }

  async commit(changes: StateChanges): Promise<CommitOutcome> {
    const appliedResults: ResultChange[] = [];
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
          worker: null,
          lease_expires: null,
        });
        s.taskLaunched.run(launch.attempt, launch.runId, launch.index);
      }
      for (const change of changes.results ?? []) {
        const r = change.result;
        const ended = s.finishAttempt.run({
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
    }).immediate();
    return { appliedResults };
  }

  async getRun(id: number): Promise<RunRecord | null> {
    const row = this.statements.getRun.get(id) as Row | undefined;
    return row ? toRun(row) : null;
  }

  async listRuns(options: { job?: string; limit?: number } = {}): Promise<RunRecord[]> {
    const limit = options.limit ?? -1;
    const rows = (options.job === undefined
      ? this.statements.listRuns.all(limit)
      : this.statements.listRunsOfJob.all(options.job, limit)) as Row[];
    return rows.map(toRun);
  }

  async counts(runId: number): Promise<TaskCounts> {
    const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as TaskCounts;
    for (const row of this.statements.counts.all(runId) as Row[]) counts[row.state as TaskState] = Number(row.n);
    return counts;
  }

  async listTasks(runId: number, options: { state?: TaskState } = {}): Promise<TaskRecord[]> {
    const rows = options.state ? this.statements.listTasksInState.all(runId, options.state) : this.statements.listTasks.all(runId);
    return (rows as Row[]).map(toTask);
  }

  async pageTasks(runId: number, query: TaskPageQuery): Promise<TaskPage> {
    const { where, orderBy, parameters } = taskPageClauses(query, { placeholder: () => '?', contains: (column, p) => `instr(lower(${column}), lower(${p})) > 0` });
    const total = this.cached(`SELECT COUNT(*) AS n FROM tasks WHERE ${where}`).get(runId, ...parameters) as Row;
    const rows = this.cached(
      `SELECT t.*, (SELECT host FROM attempts a WHERE a.run_id = t.run_id AND a.idx = t.idx AND a.attempt = t.attempts) AS host
       FROM tasks t WHERE ${where} ORDER BY ${orderBy} LIMIT ? OFFSET ?`,
    ).all(runId, ...parameters, query.limit, query.offset) as Row[];
    return { total: Number(total.n), tasks: rows.map((row) => ({ ...toTask(row), host: (row.host as string | null) ?? null })) };
  }

  async attemptSpans(runId: number): Promise<AttemptSpan[]> {
    // Rows as arrays: at 100,000 attempts, building an object per row is most of the cost.
    return (this.statements.attemptSpans.raw().all(runId) as unknown[][]).map(([idx, launched_at, started_at, ended_at, reason, memory, peak_memory]) =>
      toSpan({ idx, launched_at, started_at, ended_at, reason, memory, peak_memory }),
    );
  }

  async getTask(runId: number, name: string): Promise<TaskRecord | null> {
    const row = this.statements.getTask.get(runId, name) as Row | undefined;
    return row ? toTask(row) : null;
  }

  async attempts(runId: number, index: number): Promise<AttemptRecord[]> {
    return (this.statements.attempts.all(runId, index) as Row[]).map(toAttempt);
  }

  async runningAttempts(runId: number): Promise<AttemptRecord[]> {
    return (this.statements.runningAttempts.all(runId) as Row[]).map(toAttempt);
  }

  async lookupCache(keys: string[]): Promise<Map<string, CacheEntry>> {
    const found = new Map<string, CacheEntry>();
    for (const key of keys) {
      const row = this.statements.getCache.get(key) as Row | undefined;
      if (row) found.set(key, { key, runId: Number(row.run_id), index: Number(row.idx), attempt: Number(row.attempt), out: String(row.out) });
    }
    return found;
  }

  async registerWorker(worker: NewWorker): Promise<void> {
    const now = Date.now();
    this.statements.registerWorker.run({
      id: worker.id,
      host: worker.host,
      pid: worker.pid,
      cpus: worker.cpus,
      memory: worker.memory,
      launched_by: worker.launchedBy,
      now,
    });
  }

  async listWorkers(options: { all?: boolean } = {}): Promise<WorkerRecord[]> {
    const rows = (options.all ? this.statements.listAllWorkers.all() : this.statements.listRunningWorkers.all()) as Row[];
    return rows.map(toWorker);
  }

  async retireWorker(workerId: string): Promise<void> {
    this.db.transaction(() => {
      const now = Date.now();
      this.statements.retireWorker.run(now, workerId);
      // Anything it still claimed is lost with it: reap it now rather than when the lease runs out.
      this.statements.expireLeasesOf.run(now, workerId);
    }).immediate();
  }

  async claim(request: ClaimRequest): Promise<ClaimedAttempt[]> {
    if (!canClaim(request)) return [];
    const claim = this.db.transaction((): ClaimedAttempt[] => {
      const s = this.statements;
      const gathers = (s.queuedGathers.all(request.limit) as Row[]).map(
        (row): ClaimCandidate => ({ runId: Number(row.id), index: GATHER_INDEX, attempt: Number(row.attempts) + 1, cpus: GATHER_CPUS, memory: null }),
      );
      const tasks = (s.pendingTasks.all({ ...perTaskLimit(request), window: candidateWindow(request) }) as Row[]).map(
        (row): ClaimCandidate => ({ runId: Number(row.run_id), index: Number(row.idx), attempt: Number(row.attempts) + 1, cpus: Number(row.cpus), memory: row.memory === null ? null : Number(row.memory) }),
      );
      const now = Date.now();
      const leaseExpires = now + request.leaseMs;
      const claimed: ClaimedAttempt[] = [];
      for (const chosen of pickFitting([...gathers, ...tasks], request)) {
        const dir = request.attemptDir({ id: chosen.runId, spec: this.spec(chosen.runId) }, chosen.index, chosen.attempt);
        let task: TaskRecord | null = null;
        if (chosen.index === GATHER_INDEX) s.setGatherState.run('running', chosen.runId);
        else task = toTask(s.claimTask.get(chosen.attempt, chosen.runId, chosen.index) as Row);
        s.insertAttempt.run({
          run_id: chosen.runId,
          idx: chosen.index,
          attempt: chosen.attempt,
          dir,
          memory: task?.memory ?? null,
          time_ms: task?.timeMs ?? null,
          launched_at: now,
          worker: request.workerId,
          lease_expires: leaseExpires,
        });
        claimed.push(task
          ? { kind: 'task', runId: chosen.runId, task, attempt: chosen.attempt, dir }
          : { kind: 'gather', runId: chosen.runId, attempt: chosen.attempt, dir });
      }
      return claimed;
    });
    // IMMEDIATE: workers in other processes claiming at the same time wait, then see what is left.
    return claim.immediate();
  }

  async heartbeat(workerId: string, holding: AttemptKey[], leaseMs: number): Promise<AttemptKey[]> {
    return this.db.transaction(() => {
      const now = Date.now();
      this.statements.workerBeat.run(now, workerId);
      return holding.filter((held) => {
        const extended = this.statements.extendLease.get(now + leaseMs, held.runId, held.index, held.attempt, workerId) as Row | undefined;
        return extended?.run_state !== 'running';
      });
    }).immediate();
  }

  async expiredAttempts(limit: number): Promise<AttemptRecord[]> {
    return (this.statements.expiredAttempts.all(Date.now(), limit) as Row[]).map(toAttempt);
  }

  async settleRun(runId: number, options: { hasGather: boolean }): Promise<'gather-queued' | 'succeeded' | 'failed' | null> {
    return this.db.transaction(() => {
      const run = this.statements.getRun.get(runId) as Row | undefined;
      if (!run || run.state !== 'running') return null;
      const gather = run.gather_state as RunRecord['gatherState'];
      if (gather === 'pending' || gather === 'running') return null;
      const tasks = this.statements.taskOutcomes.get({ run_id: runId }) as Row;
      if (Number(tasks.unfinished) > 0) return null;
      const allSucceeded = Number(tasks.unsuccessful) === 0;
      if (options.hasGather && allSucceeded && gather === null) {
        this.statements.setGatherState.run('pending', runId);
        return 'gather-queued';
      }
      const state = allSucceeded && gather !== 'failed' ? 'succeeded' : 'failed';
      this.statements.setRunState.run(state, Date.now(), runId);
      return state;
    }).immediate();
  }

  async close(): Promise<void> {
    this.db.close();
  }

  /** A statement built from fixed pieces (a page query's filter and sort), prepared once. */
  private cached(sql: string): Database.Statement {
    let statement = this.pageStatements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.pageStatements.set(sql, statement);
    }
    return statement;
  }

  private spec(runId: number): JobSpec {
    let spec = this.specs.get(runId);
    if (!spec) {
      spec = JSON.parse(String((this.statements.getSpec.get(runId) as Row).spec)) as JobSpec;
      this.specs.set(runId, spec);
    }
    return spec;
  }
}

function migrate(db: Database.Database, path: string): void {
  // Read the version inside the write transaction: processes opening a new store at the same
  // moment (a fleet of workers starting) apply each migration once, one after the other.
  db.transaction(() => {
    const current = Number(db.pragma('user_version', { simple: true }));
    if (current > MIGRATIONS.length) {
      throw new UserError(
        `the store ${path} was written by a newer fanout (schema ${current}, this fanout knows ${MIGRATIONS.length})`,
        'upgrade fanout, or use another --home',
      );
    }
    for (let version = current; version < MIGRATIONS.length; version++) db.exec(MIGRATIONS[version]!);
    if (current < MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
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
    getSpec: db.prepare('SELECT spec FROM runs WHERE id = ?'),
    listRuns: db.prepare('SELECT * FROM runs ORDER BY id DESC LIMIT ?'),
    runningRunsOfJob: db.prepare(`SELECT coordinator FROM runs WHERE job = ? AND state = 'running'`),
    listRunsOfJob: db.prepare('SELECT * FROM runs WHERE job = ? ORDER BY id DESC LIMIT ?'),
    setCoordinator: db.prepare('UPDATE runs SET coordinator = ? WHERE id = ?'),
    setLauncher: db.prepare('UPDATE runs SET launcher = ? WHERE id = ?'),
    setRunState: db.prepare('UPDATE runs SET state = ?, ended_at = ? WHERE id = ?'),
    setGatherState: db.prepare('UPDATE runs SET gather_state = ? WHERE id = ?'),
    counts: db.prepare('SELECT state, COUNT(*) AS n FROM tasks WHERE run_id = ? GROUP BY state'),
    // EXISTS, not counts: a run is settled after each result, and may have 100,000 tasks.
    taskOutcomes: db.prepare(
      `SELECT EXISTS (SELECT 1 FROM tasks WHERE run_id = @run_id AND state IN ('pending', 'running')) AS unfinished,
              EXISTS (SELECT 1 FROM tasks WHERE run_id = @run_id AND state IN ('failed', 'cancelled')) AS unsuccessful`,
    ),
    listTasks: db.prepare('SELECT * FROM tasks WHERE run_id = ? ORDER BY idx'),
    listTasksInState: db.prepare('SELECT * FROM tasks WHERE run_id = ? AND state = ? ORDER BY idx'),
    getTask: db.prepare('SELECT * FROM tasks WHERE run_id = ? AND name = ?'),
    insertAttempt: db.prepare(
      `INSERT INTO attempts (run_id, idx, attempt, state, dir, memory, time_ms, launched_at, worker, lease_expires)
       VALUES (@run_id, @idx, @attempt, 'running', @dir, @memory, @time_ms, @launched_at, @worker, @lease_expires)`,
    ),
    taskLaunched: db.prepare(`UPDATE tasks SET state = 'running', attempts = ? WHERE run_id = ? AND idx = ?`),
    finishAttempt: db.prepare(
      `UPDATE attempts SET state = 'done', reason = @reason, exit_code = @exit_code, signal = @signal,
         started_at = @started_at, ended_at = @ended_at, peak_memory = @peak_memory, cpu_ms = @cpu_ms,
         host = @host, error = @error, lease_expires = NULL
       WHERE run_id = @run_id AND idx = @idx AND attempt = @attempt AND state = 'running'`,
    ),
    taskFinished: db.prepare(
      `UPDATE tasks SET state = @state, memory = @memory, time_ms = @time_ms, retry_base = @retry_base, reason = @reason,
         exit_code = @exit_code, peak_memory = @peak_memory, duration_ms = @duration_ms
       WHERE run_id = @run_id AND idx = @idx`,
    ),
    setTaskState: db.prepare('UPDATE tasks SET state = ? WHERE run_id = ? AND idx = ?'),
    resetTask: db.prepare('UPDATE tasks SET state = ?, retry_base = attempts WHERE run_id = ? AND idx = ?'),
    attempts: db.prepare('SELECT * FROM attempts WHERE run_id = ? AND idx = ? ORDER BY attempt'),
    attemptSpans: db.prepare('SELECT idx, launched_at, started_at, ended_at, reason, memory, peak_memory FROM attempts WHERE run_id = ? AND idx >= 0'),
    runningAttempts: db.prepare(`SELECT * FROM attempts WHERE run_id = ? AND state = 'running' ORDER BY idx, attempt`),
    getCache: db.prepare('SELECT * FROM cache WHERE key = ?'),
    upsertCache: db.prepare(
      `INSERT INTO cache (key, run_id, idx, attempt, out) VALUES (@key, @run_id, @idx, @attempt, @out)
       ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id, idx = excluded.idx,
         attempt = excluded.attempt, out = excluded.out`,
    ),

    registerWorker: db.prepare(
      `INSERT INTO workers (id, host, pid, cpus, memory, launched_by, state, started_at, heartbeat_at)
       VALUES (@id, @host, @pid, @cpus, @memory, @launched_by, 'running', @now, @now)
       ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, cpus = excluded.cpus,
         memory = excluded.memory, launched_by = excluded.launched_by, state = 'running', heartbeat_at = excluded.heartbeat_at`,
    ),
    listRunningWorkers: db.prepare(
      `SELECT w.*, (SELECT COUNT(*) FROM attempts a WHERE a.worker = w.id AND a.state = 'running') AS holding
       FROM workers w WHERE w.state = 'running' ORDER BY w.started_at DESC, w.rowid DESC`,
    ),
    listAllWorkers: db.prepare(
      `SELECT w.*, (SELECT COUNT(*) FROM attempts a WHERE a.worker = w.id AND a.state = 'running') AS holding
       FROM workers w ORDER BY w.started_at DESC, w.rowid DESC`,
    ),
    retireWorker: db.prepare(`UPDATE workers SET state = 'stopped', heartbeat_at = ? WHERE id = ?`),
    expireLeasesOf: db.prepare(`UPDATE attempts SET lease_expires = ? WHERE worker = ? AND state = 'running'`),
    workerBeat: db.prepare(`UPDATE workers SET heartbeat_at = ? WHERE id = ?`),
    extendLease: db.prepare(
      `UPDATE attempts SET lease_expires = ?
       WHERE run_id = ? AND idx = ? AND attempt = ? AND state = 'running' AND worker = ?
       RETURNING (SELECT state FROM runs WHERE runs.id = attempts.run_id) AS run_state`,
    ),
    expiredAttempts: db.prepare(
      `SELECT * FROM attempts WHERE state = 'running' AND lease_expires <= ? ORDER BY lease_expires, run_id, idx LIMIT ?`,
    ),
    queuedGathers: db.prepare(
      `SELECT r.id, (SELECT COUNT(*) FROM attempts a WHERE a.run_id = r.id AND a.idx = ${GATHER_INDEX}) AS attempts
       FROM runs r WHERE r.state = 'running' AND r.backend = 'workers' AND r.gather_state = 'pending'
       ORDER BY r.id LIMIT ?`,
    ),
    // Runs outside, then each run's pending tasks in order: done tasks and other backends' runs are never walked.
    pendingTasks: db.prepare(
      `SELECT t.run_id, t.idx, t.attempts, t.cpus, t.memory
       FROM runs r CROSS JOIN tasks t INDEXED BY tasks_pending ON t.run_id = r.id AND t.state = 'pending'
       WHERE r.state = 'running' AND r.backend = 'workers' AND t.cpus <= @cpus AND COALESCE(t.memory, 0) <= @memory
       ORDER BY r.id, t.idx LIMIT @window`,
    ),
    claimTask: db.prepare(`UPDATE tasks SET state = 'running', attempts = ? WHERE run_id = ? AND idx = ? RETURNING *`),
  };
}
