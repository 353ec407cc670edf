import type { AttemptReason } from '../job/job-spec.js';
import type { RunRecord, RunState, TaskCounts } from '../store/records.js';
import type { Store } from '../store/store.js';

/**
 * The JSON an alert carries: what a webhook receives as its POST body and a `notify.command`
 * reads on stdin. Field names follow `fanout status --json` and `fanout tasks --json`.
 */

/** A task that failed for good, with how its last attempt ended. */
export interface FailedTaskSummary {
  name: string;
  index: number;
  attempts: number;
  reason: AttemptReason | null;
  exitCode: number | null;
  /** fanout's own word on the last attempt (e.g. why it was `lost`), when it has one. */
  error: string | null;
}

/** Sent when a run ends: `finished` (it succeeded) or `failed`. */
export interface RunEndedAlert {
  event: 'finished' | 'failed';
  run: number;
  job: string;
  backend: string;
  state: RunState;
  /** The gather's outcome; null when the job has none or it did not run. */
  gather: RunRecord['gatherState'];
  counts: TaskCounts;
  total: number;
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  outdir: string;
  /** At most FAILED_TASKS_LISTED tasks, in task order. */
  failedTasks: FailedTaskSummary[];
  /** How many more failed tasks there are than listed. */
  failedTasksNotListed: number;
}

/** Sent each time a task fails with no retry left. */
export interface TaskFailedAlert {
  event: 'task_failed';
  run: number;
  job: string;
  backend: string;
  task: FailedTaskSummary;
}

export type AlertSummary = RunEndedAlert | TaskFailedAlert;

/** Enough for a chat message or a ticket; the rest is one `fanout tasks --state failed` away. */
const FAILED_TASKS_LISTED = 20;

/** @internal The event a run that ended in `state` alerts on; null for a cancelled (or running) run. */
export function runEndedEvent(state: RunState): RunEndedAlert['event'] | null {
  if (state === 'succeeded') return 'finished';
  if (state === 'failed') return 'failed';
  return null;
}

/** @internal The summary of a run that has just ended (`event` says how), read from the store. */
export async function runEndedSummary(store: Store, runId: number, event: RunEndedAlert['event']): Promise<RunEndedAlert> {
  const run = await store.getRun(runId);
  if (!run) throw new Error(`run ${runId} is not in the store`);
  const [counts, failed] = await Promise.all([store.counts(runId), store.listTasks(runId, { state: 'failed' })]);
  const listed = failed.slice(0, FAILED_TASKS_LISTED);
  const failedTasks = await Promise.all(
    listed.map(async (task): Promise<FailedTaskSummary> => {
      const last = (await store.attempts(runId, task.index)).at(-1);
      return { name: task.name, index: task.index, attempts: task.attempts, reason: task.reason, exitCode: task.exitCode, error: last?.error ?? null };
    }),
  );
  return {
    event,
    run: run.id,
    job: run.job,
    backend: run.backend,
    state: run.state,
    gather: run.gatherState,
    counts,
    total: Object.values(counts).reduce((sum, n) => sum + n, 0),
    startedAt: new Date(run.createdAt).toISOString(),
    endedAt: run.endedAt === null ? null : new Date(run.endedAt).toISOString(),
    durationMs: run.endedAt === null ? null : run.endedAt - run.createdAt,
    outdir: run.spec.outdir,
    failedTasks,
    failedTasksNotListed: failed.length - listed.length,
  };
}

/** @internal */
export function taskFailedSummary(run: RunRecord, task: FailedTaskSummary): TaskFailedAlert {
  return { event: 'task_failed', run: run.id, job: run.job, backend: run.backend, task };
}
