/**
 * What the worker process of a function map (map-worker.ts) and the process that gathers its
 * results (task-results.ts) agree on. Kept apart so the worker loads nothing else.
 */

/** In the task's outputs: the function's return value as JSON (absent when it returned undefined). */
export const RETURN_FILE = 'return.json';

/**
 * The last line of a failed task's stderr: this prefix, then `{"name","message","stack"}` of what
 * the function threw. The log travels on every backend (shared folders, object storage), so the
 * error comes back from wherever the task ran.
 */
export const ERROR_LINE_PREFIX = 'fanout-map-error: ';

/** What a function threw, as it comes back. */
export interface ThrownError {
  name: string;
  message: string;
  stack: string | undefined;
}

/** The thrown error a worker reported in its stderr, or null when there is none. */
export function thrownErrorIn(stderr: string): ThrownError | null {
  const at = stderr.lastIndexOf(`\n${ERROR_LINE_PREFIX}`);
  const start = stderr.startsWith(ERROR_LINE_PREFIX) ? 0 : at + 1;
  if (at < 0 && start !== 0) return null;
  const line = stderr.slice(start + ERROR_LINE_PREFIX.length).split('\n')[0]!;
  try {
    const parsed = JSON.parse(line) as Partial<ThrownError>;
    if (typeof parsed.message !== 'string') return null;
    return { name: typeof parsed.name === 'string' ? parsed.name : 'Error', message: parsed.message, stack: typeof parsed.stack === 'string' ? parsed.stack : undefined };
  } catch {
    return null;
  }
}
