import Database from 'better-sqlite3';
import {
  TASK_STATES,
  type AttemptRecord,
  type AttemptSpan,
  type CacheEntry,
  type GatherAttemptRecord,
  type RunRecord,
  type TaskCounts,
  type TaskRecord,
  type TaskState,
} from '../records.js';
import {
  toAttempt,
  toCacheEntry,
  toGatherAttempt,
  toRun,
  toSpan,
  toTask,
  type AttemptRow,
  type CacheRow,
  type CountRow,
  type GatherRow,
  type RunRow,
  type SpanRow,
  type StateCountRow,
  type TaskRow,
  type TaskWithHostRow,
} from '../rows.js';
import type { RunQueries } from '../run-queries.js';
import { taskPageClauses, type TaskPage, type TaskPageQuery } from '../task-page.js';
import type { SqliteDatabase } from './sqlite-connection.js';

/** What the faces read, from SQLite: prepared statements, each a plain read. */
export class SqliteQueries implements RunQueries {
  private readonly statements;
  private readonly pageStatements = new Map<string, Database.Statement<unknown[], unknown>>();

  constructor(private readonly db: SqliteDatabase) {
    this.statements = prepareStatements(db);
  }

  async getRun(id: number): Promise<RunRecord | null> {
    const row = this.statements.getRun.get(id);
    return row ? toRun(row) : null;
  }

  async listRuns(options: { job?: string; limit?: number } = {}): Promise<RunRecord[]> {
    const limit = options.limit ?? -1;
    const rows = options.job === undefined ? this.statements.listRuns.all(limit) : this.statements.listRunsOfJob.all(options.job, limit);
    return rows.map(toRun);
  }

  async counts(runId: number): Promise<TaskCounts> {
    const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as TaskCounts;
    for (const row of this.statements.counts.all(runId)) counts[row.state] = Number(row.n);
    return counts;
  }

  async listTasks(runId: number, options: { state?: TaskState } = {}): Promise<TaskRecord[]> {
    const rows = options.state ? this.statements.listTasksInState.all(runId, options.state) : this.statements.listTasks.all(runId);
    return rows.map(toTask);
  }

  async pageTasks(runId: number, query: TaskPageQuery): Promise<TaskPage> {
    const { where, orderBy, parameters } = taskPageClauses(query, { placeholder: () => '?', contains: (column, p) => `instr(lower(${column}), lower(${p})) > 0` });
    const total = this.cached(`SELECT COUNT(*) AS n FROM tasks WHERE ${where}`).get(runId, ...parameters) as CountRow;
    const rows = this.cached(
      `SELECT t.*, (SELECT host FROM attempts a WHERE a.run_id = t.run_id AND a.idx = t.idx AND a.attempt = t.attempts) AS host
       FROM tasks t WHERE ${where} ORDER BY ${orderBy} LIMIT ? OFFSET ?`,
    ).all(runId, ...parameters, query.limit, query.offset) as TaskWithHostRow[];
    return { total: Number(total.n), tasks: rows.map((row) => ({ ...toTask(row), host: row.host ?? null })) };
  }

  async getTask(runId: number, name: string): Promise<TaskRecord | null> {
    const row = this.statements.getTask.get(runId, name);
    return row ? toTask(row) : null;
  }

  async attempts(runId: number, index: number): Promise<AttemptRecord[]> {
    return this.statements.attempts.all(runId, index).map(toAttempt);
  }

  async runningAttempts(runId: number): Promise<AttemptRecord[]> {
    return this.statements.runningAttempts.all(runId).map(toAttempt);
  }

  async gatherAttempts(runId: number): Promise<GatherAttemptRecord[]> {
    return this.statements.gatherAttempts.all(runId).map(toGatherAttempt);
  }

  async attemptSpans(runId: number): Promise<AttemptSpan[]> {
    // Rows as arrays: at 100,000 attempts, building an object per row is most of the cost.
    const rows = this.statements.attemptSpans.raw().all(runId) as unknown as Array<
      [SpanRow['idx'], SpanRow['launched_at'], SpanRow['started_at'], SpanRow['ended_at'], SpanRow['reason'], SpanRow['memory'], SpanRow['peak_memory']]
    >;
    return rows.map(([idx, launched_at, started_at, ended_at, reason, memory, peak_memory]) =>
      toSpan({ idx, launched_at, started_at, ended_at, reason, memory, peak_memory }),
    );
  }

  async lookupCache(keys: string[]): Promise<Map<string, CacheEntry>> {
    const found = new Map<string, CacheEntry>();
    for (const key of keys) {
      const row = this.statements.getCache.get(key);
      if (row) found.set(key, toCacheEntry(row));
    }
    return found;
  }

  async gatherDone(cacheKey: string): Promise<boolean> {
    return this.statements.gatherDone.get(cacheKey) !== undefined;
  }

  /** A statement built from fixed pieces (a page query's filter and sort), prepared once. */
  private cached(sql: string): Database.Statement<unknown[], unknown> {
    let statement = this.pageStatements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.pageStatements.set(sql, statement);
    }
    return statement;
  }
}

function prepareStatements(db: SqliteDatabase) {
  return {
    getRun: db.prepare<[number], RunRow>('SELECT * FROM runs WHERE id = ?'),
    listRuns: db.prepare<[number], RunRow>('SELECT * FROM runs ORDER BY id DESC LIMIT ?'),
    listRunsOfJob: db.prepare<[string, number], RunRow>('SELECT * FROM runs WHERE job = ? ORDER BY id DESC LIMIT ?'),
    counts: db.prepare<[number], StateCountRow>('SELECT state, COUNT(*) AS n FROM tasks WHERE run_id = ? GROUP BY state'),
    listTasks: db.prepare<[number], TaskRow>('SELECT * FROM tasks WHERE run_id = ? ORDER BY idx'),
    listTasksInState: db.prepare<[number, string], TaskRow>('SELECT * FROM tasks WHERE run_id = ? AND state = ? ORDER BY idx'),
    getTask: db.prepare<[number, string], TaskRow>('SELECT * FROM tasks WHERE run_id = ? AND name = ?'),
    attempts: db.prepare<[number, number], AttemptRow>('SELECT * FROM attempts WHERE run_id = ? AND idx = ? ORDER BY attempt'),
    attemptSpans: db.prepare<[number], SpanRow>('SELECT idx, launched_at, started_at, ended_at, reason, memory, peak_memory FROM attempts WHERE run_id = ?'),
    runningAttempts: db.prepare<[number], AttemptRow>(`SELECT * FROM attempts WHERE run_id = ? AND state = 'running' ORDER BY idx, attempt`),
    gatherAttempts: db.prepare<[number], GatherRow>('SELECT * FROM gathers WHERE run_id = ? ORDER BY attempt'),
    getCache: db.prepare<[string], CacheRow>('SELECT * FROM cache WHERE key = ?'),
    gatherDone: db.prepare<[string], { found: 1 }>(`SELECT 1 AS found FROM gathers WHERE cache_key = ? AND state = 'done' AND reason = 'ok' LIMIT 1`),
  };
}
