import { DEFAULT_PLATFORM_MAX } from '../job/compile-job.js';
import type { AttemptReason, RetryPolicy } from '../job/job-spec.js';
import type { AttemptOutcome, RunRecord, TaskRecord } from '../store/records.js';
import type { ResultChange } from '../store/run-ledger.js';
import { finalOut } from './home-layout.js';

/**
 * What an ended attempt means, decided in one place for every backend: the coordinator (push)
 * and the pull workers only carry out the answer. A pure function of the task, the attempt's
 * result, the retry policy, the run's state and the capacity the backend declares.
 */

/** An attempt that ended, as its driver saw it. */
export interface EndedAttempt {
  task: Pick<TaskRecord, 'index' | 'name' | 'cacheKey' | 'attempts' | 'retryBase' | 'platformFailures' | 'memory' | 'timeMs'>;
  attempt: number;
  /** Its result record; `notStarted` when it never reached a process. */
  result: AttemptOutcome & { notStarted?: boolean };
  /**
   * Why it ended besides its own doing. `handed-back`: its worker gave it back (stopped, end of
   * its lifetime), whatever the result. `supervisor-lost`: the coordinator that launched it died
   * (a `lost` result then says nothing about the task). `none`: it ran its course.
   */
  interruption: 'none' | 'handed-back' | 'supervisor-lost';
}

/** The run the attempt belongs to, as far as the decision needs it. */
export interface RunRules {
  runId: number;
  retry: RetryPolicy;
  outdir: string;
  /** The run is being stopped (or was cancelled): nothing is retried. */
  stopping: boolean;
  /** The most memory one attempt can be given (the backend's capacity): an escalated oom asks for no more. */
  memoryCeiling: number;
}

/** The rules of `run` as its driver sees them now: whether it is stopping, and what its backend can give one attempt. */
export function rulesOf(run: Pick<RunRecord, 'id' | 'spec'>, now: { stopping: boolean; memoryCeiling: number }): RunRules {
  // A run recorded before retry.platform_max existed gets its default when it is resumed.
  const retry = { ...run.spec.retry, platformMax: run.spec.retry.platformMax ?? DEFAULT_PLATFORM_MAX };
  return { runId: run.id, retry, outdir: run.spec.outdir, ...now };
}

/** Failures of the platform, not of the task: its worker, node or job vanished (`lost`), or staging or submitting it failed (`infra`). */
const PLATFORM_FAILURES: ReadonlySet<AttemptReason> = new Set(['lost', 'infra']);

/**
 * Who pays for an ended attempt. `nobody`: it says nothing about the task (its worker handed it
 * back, it never started, or the coordinator that launched it died), so it is retried and not
 * counted; a person or a scheduler acted each time, so this cannot loop by itself. `platform`: a
 * platform failure while the task's allowance (`retry.platform_max`) lasts: retried without
 * spending `retry.max`, and counted, so a task that kills every worker it lands on still ends.
 * `task`: everything else, which `retry.on` and `retry.max` decide.
 */
function payerOf(ended: EndedAttempt, retry: RetryPolicy): 'nobody' | 'platform' | 'task' {
  const { result, interruption, task } = ended;
  if (interruption === 'handed-back') return 'nobody';
  if (result.reason === 'lost' && (interruption === 'supervisor-lost' || result.notStarted === true)) return 'nobody';
  if (PLATFORM_FAILURES.has(result.reason) && task.platformFailures < retry.platformMax) return 'platform';
  return 'task';
}

/**
 * The result to commit for an ended attempt: the task's next state (succeeded; pending with the
 * resources of its next attempt, charged to the retry budget or not; failed for good;
 * cancelled) and, on success, the cache entry of its output.
 */
export function decideAttempt(ended: EndedAttempt, run: RunRules): ResultChange {
  const { task, result, attempt } = ended;
  const same = { memory: task.memory, timeMs: task.timeMs };
  const payer = payerOf(ended, run.retry);
  let next: { state: 'pending' | 'succeeded' | 'failed' | 'cancelled'; memory: number | null; timeMs: number | null };
  if (payer !== 'task') next = { state: 'pending', ...same };
  else if (result.reason === 'ok') next = { state: 'succeeded', ...same };
  else if (result.reason === 'cancelled') next = { state: 'cancelled', ...same };
  else if (!run.retry.on.includes(result.reason) || task.attempts - task.retryBase > run.retry.max) next = { state: 'failed', ...same };
  else next = { state: 'pending', ...escalated(result.reason, task, run) };
  if (run.stopping && next.state === 'pending') next = { ...next, state: 'cancelled' };
  return {
    runId: run.runId,
    index: task.index,
    attempt,
    result,
    task: {
      ...next,
      retryBase: task.retryBase + (payer === 'task' ? 0 : 1),
      platformFailures: task.platformFailures + (payer === 'platform' ? 1 : 0),
    },
    cache: result.reason === 'ok' ? { key: task.cacheKey, runId: run.runId, index: task.index, attempt, out: finalOut(run.outdir, task.name) } : undefined,
  };
}

/** A retried oom asks for memory × escalate.memory (never more than the ceiling), a retried timeout for time × escalate.time. */
function escalated(reason: string, task: EndedAttempt['task'], run: RunRules): { memory: number | null; timeMs: number | null } {
  const { escalate } = run.retry;
  return {
    memory: reason === 'oom' && task.memory !== null ? Math.min(Math.ceil(task.memory * escalate.memory), run.memoryCeiling) : task.memory,
    timeMs: reason === 'timeout' && task.timeMs !== null ? Math.ceil(task.timeMs * escalate.time) : task.timeMs,
  };
}
