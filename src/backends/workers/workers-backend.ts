import type { Capacity, PullBackend } from '../backend.js';

/**
 * Pull workers: a run's attempts wait in the shared store until `fanout worker` processes on any
 * machine claim them (src/worker/). Workers come in every size, so a task is refused only if no
 * worker could ever take it, and an escalated retry is not capped by any one machine.
 */
export const ANY_WORKER: Capacity = { cpus: Number.MAX_SAFE_INTEGER, memory: Number.MAX_SAFE_INTEGER, shared: false };

export class WorkersBackend implements PullBackend {
  readonly name = 'workers';
  readonly dispatch = 'pull';
  /** Workers stage s3:// inputs in and outputs out themselves. */
  readonly objectStorage = true;

  capacity(): Capacity {
    return ANY_WORKER;
  }

  defaultConcurrency(): null {
    return null;
  }
}
