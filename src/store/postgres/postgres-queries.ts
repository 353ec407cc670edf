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
import { shapeName, statement, type PostgresConnection } from './postgres-connection.js';

/** What the faces read, from PostgreSQL: prepared statements, each one round trip. */
export class PostgresQueries implements RunQueries {
  constructor(private readonly db: PostgresConnection) {}

  async getRun(id: number): Promise<RunRecord | null> {
    const [row] = await this.db.query(SQL.getRun, [id]);
    return row ? toRun(row) : null;
  }

  async listRuns(options: { job?: string; limit?: number } = {}): Promise<RunRecord[]> {
    const rows = await this.db.query(SQL.listRuns, [options.job ?? null, options.limit ?? null]);
    return rows.map(toRun);
  }

  async counts(runId: number): Promise<TaskCounts> {
    const counts = Object.fromEntries(TASK_STATES.map((state) => [state, 0])) as TaskCounts;
    for (const row of await this.db.query(SQL.counts, [runId])) counts[row.state] = Number(row.n);
    return counts;
  }

  async listTasks(runId: number, options: { state?: TaskState } = {}): Promise<TaskRecord[]> {
    const rows = options.state ? await this.db.query(SQL.listTasksInState, [runId, options.state]) : await this.db.query(SQL.listTasks, [runId]);
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
      this.db.query(statement<CountRow>(`task_count_${shapeName(countText)}`, countText), [runId, ...parameters]),
      this.db.query(statement<TaskWithHostRow>(`task_page_${shapeName(pageText)}`, pageText), [runId, ...parameters, query.limit, query.offset]),
    ]);
    return { total: Number(total?.n ?? 0), tasks: rows.map((row) => ({ ...toTask(row), host: row.host ?? null })) };
  }

  async getTask(runId: number, name: string): Promise<TaskRecord | null> {
    const [row] = await this.db.query(SQL.getTask, [runId, name]);
    return row ? toTask(row) : null;
  }

  async attempts(runId: number, index: number): Promise<AttemptRecord[]> {
    return (await this.db.query(SQL.attempts, [runId, index])).map(toAttempt);
  }

  async runningAttempts(runId: number): Promise<AttemptRecord[]> {
    return (await this.db.query(SQL.runningAttempts, [runId])).map(toAttempt);
  }

  async gatherAttempts(runId: number): Promise<GatherAttemptRecord[]> {
    return (await this.db.query(SQL.gatherAttempts, [runId])).map(toGatherAttempt);
  }

  async attemptSpans(runId: number): Promise<AttemptSpan[]> {
    return (await this.db.query(SQL.attemptSpans, [runId])).map(toSpan);
  }

  async lookupCache(keys: string[]): Promise<Map<string, CacheEntry>> {
    const found = new Map<string, CacheEntry>();
    if (keys.length === 0) return found;
    for (const row of await this.db.query(SQL.lookupCache, [keys])) found.set(row.key, toCacheEntry(row));
    return found;
  }

  async gatherDone(cacheKey: string): Promise<boolean> {
    return (await this.db.query(SQL.gatherDone, [cacheKey])).length > 0;
  }
}

const SQL = {
  getRun: statement<RunRow>('get_run', 'SELECT * FROM runs WHERE id = $1'),
  listRuns: statement<RunRow>('list_runs', 'SELECT * FROM runs WHERE $1::text IS NULL OR job = $1 ORDER BY id DESC LIMIT $2'),
  counts: statement<StateCountRow>('counts', 'SELECT state, count(*) AS n FROM tasks WHERE run_id = $1 GROUP BY state'),
  listTasks: statement<TaskRow>('list_tasks', 'SELECT * FROM tasks WHERE run_id = $1 ORDER BY idx'),
  listTasksInState: statement<TaskRow>('list_tasks_in_state', 'SELECT * FROM tasks WHERE run_id = $1 AND state = $2 ORDER BY idx'),
  getTask: statement<TaskRow>('get_task', 'SELECT * FROM tasks WHERE run_id = $1 AND name = $2'),
  attempts: statement<AttemptRow>('attempts', 'SELECT * FROM attempts WHERE run_id = $1 AND idx = $2 ORDER BY attempt'),
  attemptSpans: statement<SpanRow>('attempt_spans', 'SELECT idx, launched_at, started_at, ended_at, reason, memory, peak_memory FROM attempts WHERE run_id = $1'),
  runningAttempts: statement<AttemptRow>('running_attempts', `SELECT * FROM attempts WHERE run_id = $1 AND state = 'running' ORDER BY idx, attempt`),
  gatherAttempts: statement<GatherRow>('gather_attempts', 'SELECT * FROM gathers WHERE run_id = $1 ORDER BY attempt'),
  lookupCache: statement<CacheRow>('lookup_cache', 'SELECT * FROM cache WHERE key = ANY($1::text[])'),
  gatherDone: statement<{ found: number }>('gather_done', `SELECT 1 AS found FROM gathers WHERE cache_key = $1 AND state = 'done' AND reason = 'ok' LIMIT 1`),
};
