import type { AttemptReason, RetryPolicy } from '../job/job-spec.js';
import type { TaskState } from '../store/store.js';

export interface TaskRequest {
  /** Attempts that count against the retry budget, the one that just ended included. */
  attempts: number;
  memory: number | null;
  timeMs: number | null;
}

export interface NextStep {
  state: Extract<TaskState, 'pending' | 'succeeded' | 'failed' | 'cancelled'>;
  memory: number | null;
  timeMs: number | null;
}

/**
 * What a task becomes when an attempt ends. A retried oom asks for memory × escalate.memory
 * (never more than the machine has), a retried timeout for time × escalate.time.
 */
export function nextStep(reason: AttemptReason, task: TaskRequest, policy: RetryPolicy, maxMemory: number): NextStep {
  const same = { memory: task.memory, timeMs: task.timeMs };
  if (reason === 'ok') return { state: 'succeeded', ...same };
  if (reason === 'cancelled') return { state: 'cancelled', ...same };
  if (reason === 'infra' || !policy.on.includes(reason) || task.attempts > policy.max) return { state: 'failed', ...same };
  return {
    state: 'pending',
    memory: reason === 'oom' && task.memory !== null ? Math.min(Math.ceil(task.memory * policy.escalate.memory), maxMemory) : task.memory,
    timeMs: reason === 'timeout' && task.timeMs !== null ? Math.ceil(task.timeMs * policy.escalate.time) : task.timeMs,
  };
}
