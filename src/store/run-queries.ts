import type { AttemptRecord, AttemptSpan, CacheEntry, GatherAttemptRecord, RunRecord, TaskCounts, TaskRecord, TaskState } from './records.js';
import type { TaskPage, TaskPageQuery } from './task-page.js';

/** What the faces (CLI, API, dashboard) and the engine read about runs; nothing here writes. */
export interface RunQueries {
  getRun(id: number): Promise<RunRecord | null>;
  /** Newest first. */
  listRuns(options?: { job?: string; limit?: number }): Promise<RunRecord[]>;
  counts(runId: number): Promise<TaskCounts>;
  listTasks(runId: number, options?: { state?: TaskState }): Promise<TaskRecord[]>;
  /** One page of a run's tasks, filtered and sorted by the store (the dashboard's table at 100,000 tasks). */
  pageTasks(runId: number, query: TaskPageQuery): Promise<TaskPage>;
  getTask(runId: number, name: string): Promise<TaskRecord | null>;
  attempts(runId: number, index: number): Promise<AttemptRecord[]>;
  /** The task attempts of a run still running. */
  runningAttempts(runId: number): Promise<AttemptRecord[]>;
  /** The run's gather attempts, oldest first. */
  gatherAttempts(runId: number): Promise<GatherAttemptRecord[]>;
  /** When each task attempt of a run was launched, started and ended, in no set order: the dashboard's plots. */
  attemptSpans(runId: number): Promise<AttemptSpan[]>;
  /** The cache entries among `keys` (succeeded task work from any run). */
  lookupCache(keys: string[]): Promise<Map<string, CacheEntry>>;
  /** Whether a gather with this cache key succeeded (in any run). */
  gatherDone(cacheKey: string): Promise<boolean>;
}
