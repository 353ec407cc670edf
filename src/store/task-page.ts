import type { TaskRecord, TaskState } from './records.js';

/**
 * One page of a run's tasks, filtered and sorted by the store (the dashboard's task table, which
 * must stay fast at 100,000 tasks): both stores build the same query from these pieces.
 */

/** What a task table may be sorted by. */
export const TASK_SORTS = ['index', 'name', 'state', 'attempts', 'duration', 'peakMemory', 'memory'] as const;
export type TaskSort = (typeof TASK_SORTS)[number];

export interface TaskPageQuery {
  state?: TaskState;
  /** Only tasks whose name contains this, ignoring case. */
  nameContains?: string;
  sort?: TaskSort;
  descending?: boolean;
  offset: number;
  limit: number;
}

/** A task with the host of its last attempt (null before it ran). */
export interface TaskRow extends TaskRecord {
  host: string | null;
}

export interface TaskPage {
  /** How many tasks match the filter, over all pages. */
  total: number;
  tasks: TaskRow[];
}

/** The column each sort orders by; from this fixed list only, so nothing from a request reaches the SQL text. */
const SORT_COLUMNS: Record<TaskSort, string> = {
  index: 'idx',
  name: 'name',
  state: 'state',
  attempts: 'attempts',
  duration: 'duration_ms',
  peakMemory: 'peak_memory',
  memory: 'memory',
};

/**
 * The WHERE and ORDER BY of a page query. `placeholder(n)` writes the nth parameter (SQLite `?`,
 * PostgreSQL `$n`); `contains(column, p)` tests a case-insensitive substring. Parameters follow
 * the run id in the order returned.
 */
export function taskPageClauses(
  query: TaskPageQuery,
  dialect: { placeholder: (n: number) => string; contains: (column: string, parameter: string) => string },
): { where: string; orderBy: string; parameters: unknown[] } {
  const conditions = [`run_id = ${dialect.placeholder(1)}`];
  const parameters: unknown[] = [];
  if (query.state !== undefined) {
    parameters.push(query.state);
    conditions.push(`state = ${dialect.placeholder(parameters.length + 1)}`);
  }
  if (query.nameContains) {
    parameters.push(query.nameContains);
    conditions.push(dialect.contains('name', dialect.placeholder(parameters.length + 1)));
  }
  const direction = query.descending ? 'DESC' : 'ASC';
  const column = SORT_COLUMNS[query.sort ?? 'index'];
  // Tasks not measured yet (null) go last either way; the index breaks ties so pages never overlap.
  const orderBy = column === 'idx' ? `idx ${direction}` : `${column} ${direction} NULLS LAST, idx ${direction}`;
  return { where: conditions.join(' AND '), orderBy, parameters };
}
