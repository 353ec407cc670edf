import type { JobSpec } from '../job/job-spec.js';
import type { AttemptRecord, GatherAttemptRecord, NewWorker, TaskRecord, WorkerRecord } from './records.js';

/**
 * The work queue of pull dispatch: pull workers claim pending tasks (and queued gathers) of
 * runs whose attempts wait in the store, hold them under leases they renew, and a run whose
 * tasks all ended is settled by whoever notices.
 */
export interface WorkQueue {
  registerWorker(worker: NewWorker): Promise<void>;
  /** Workers newest first, with the attempts each holds; stopped ones only with `all`. */
  listWorkers(options?: { all?: boolean }): Promise<WorkerRecord[]>;
  /** The worker stopped cleanly; what it still holds is lost with it (its leases end now). */
  retireWorker(workerId: string): Promise<void>;
  /**
   * Claim work for a worker: first the gather of a run whose tasks all succeeded (gather state
   * `pending`), then pending tasks of running pull-dispatch runs, oldest run first, that fit in
   * what the worker has free. Each claimed attempt is recorded (as a launch would be) with a
   * lease held by the worker until `leaseMs` from now. Two workers never claim the same task.
   */
  claim(request: ClaimRequest): Promise<ClaimedAttempt[]>;
  /**
   * Extend the leases of the attempts the worker holds (`holding`), and note its heartbeat.
   * Returns those of them it must stop: their run is no longer running (cancelled), or they are
   * no longer running under this worker (their lease ran out and they were reaped).
   * Leases are measured by the store's clock (PostgreSQL: the server's), not the worker's.
   */
  heartbeat(workerId: string, holding: AttemptKey[], leaseMs: number): Promise<AttemptKey[]>;
  /**
   * The worker is about to hand these attempts of tasks (claimed, perhaps ahead) to its launcher:
   * their `startedAt` is set. An attempt reaped without one never ran, and costs its task nothing.
   */
  started(workerId: string, attempts: Array<Extract<AttemptKey, { kind: 'task' }>>): Promise<void>;
  /**
   * True while a running run of pull dispatch has an attempt (of a task or a gather) out under a
   * lease: if its worker vanishes the lease runs out and the attempt is back in the queue, so a
   * queue with nothing to claim is not empty yet.
   */
  leasesOutstanding(): Promise<boolean>;
  /** Workers whose attempts were reaped: listed `lost` (not `running`) unless they heartbeat again. */
  workersLost(workerIds: string[]): Promise<void>;
  /** Running attempts whose lease ran out (their worker vanished), oldest first, at most `limit` of each kind. */
  expiredAttempts(limit: number): Promise<{ tasks: AttemptRecord[]; gathers: GatherAttemptRecord[] }>;
  /**
   * End a pull-dispatch run whose tasks have all ended, in one transaction: queue its gather
   * (gather state `pending`) when it has one that has not run and every task succeeded;
   * otherwise set the run `succeeded` or `failed`. Nothing happens while a task is pending or
   * running, while the gather is queued or running, or when the run is not running.
   */
  settleRun(runId: number, options: { hasGather: boolean }): Promise<'gather-queued' | 'succeeded' | 'failed' | null>;
}

/** An attempt a worker holds: of a task, or of a run's gather. */
export type AttemptKey = { kind: 'task'; runId: number; index: number; attempt: number } | { kind: 'gather'; runId: number; attempt: number };

/** Where claimed attempts get their folders (recorded as each attempt's `dir`): the fanout home's layout. */
export interface AttemptFolders {
  attemptDir(run: { id: number; spec: JobSpec }, index: number, attempt: number): string;
  gatherDir(run: { id: number; spec: JobSpec }, attempt: number): string;
}

export interface ClaimRequest {
  workerId: string;
  /** What the worker has free: a task is claimed only if it fits (its memory null counts as 0). */
  cpus: number;
  memory: number;
  /** The most attempts to claim at once. */
  limit: number;
  /**
   * The most one task may ask for: the worker's whole size. Defaults to `cpus` and `memory`; a
   * worker that claims ahead (more in all than it has free) sets it so no task is too big for it.
   */
  perTask?: { cpus: number; memory: number };
  leaseMs: number;
  folders: AttemptFolders;
}

/** An attempt a worker now holds. The task is as it is after the claim (its attempts include this one). */
export type ClaimedAttempt =
  { kind: 'task'; runId: number; task: TaskRecord; attempt: number; dir: string } | { kind: 'gather'; runId: number; attempt: number; dir: string };
