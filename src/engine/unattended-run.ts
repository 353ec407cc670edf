import { hostname } from 'node:os';
import { isAlive } from '../process-identity.js';
import type { RunRecord, WorkerRecord } from '../store/records.js';

/**
 * A run recorded `running` that no live process moves forward: its coordinator died (push), or
 * no pull worker is alive to claim its tasks (pull). `status` said `running, 8m59s` of such a
 * run; now it says so, and which command picks it up again.
 */
export interface Unattended {
  /** Why nothing drives it, e.g. `its coordinator (pid 4242 on node1) is gone`. */
  why: string;
  /** The command that resumes it. */
  resume: string;
}

/**
 * A pull worker counts as alive while its heartbeat is this recent. Workers beat every third of
 * their lease (60 s by default); this is the default lease three times over, so a busy store or
 * machine never makes a live worker look gone.
 */
const WORKER_SILENCE_MS = 180_000;

/** Whether a running run is unattended, and how to resume it; null when something drives it (or it ended). */
export function unattendedRun(run: RunRecord, workers: readonly WorkerRecord[], now = Date.now()): Unattended | null {
  if (run.state !== 'running') return null;
  if (run.dispatch === 'push') {
    const coordinator = run.coordinator;
    if (coordinator && isAlive(coordinator)) return null;
    const backend = run.backend === 'local' ? '' : ` --backend ${run.backend}`;
    return {
      why: coordinator ? `its coordinator (pid ${coordinator.pid} on ${coordinator.host}) is gone` : 'no coordinator holds it',
      // A run started from code (`<api>`) has no job file to name: the program that started it resumes it.
      resume: run.jobFile.startsWith('<') ? 'start it again from the program that started it' : `fanout run ${run.jobFile}${backend}`,
    };
  }
  if (workers.some((worker) => workerAlive(worker, now))) return null;
  return { why: 'no pull worker is alive to claim its tasks', resume: 'fanout worker (or fanout workers start --count N)' };
}

function workerAlive(worker: WorkerRecord, now: number): boolean {
  if (worker.state !== 'running' || now - worker.heartbeatAt > WORKER_SILENCE_MS) return false;
  // On this machine a dead worker is known at once, without waiting for its heartbeat to age.
  return worker.host !== hostname() || isAlive({ pid: worker.pid, host: worker.host, startedAt: null });
}
