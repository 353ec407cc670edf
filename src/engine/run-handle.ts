import type { GatherOutcome, RunRecord, TaskCounts } from '../store/records.js';

export interface Progress {
  counts: TaskCounts;
  total: number;
  startedAt: number;
}

export interface RunOutcome {
  run: RunRecord;
  counts: TaskCounts;
  gather: GatherOutcome | null;
}

/** A run being driven (push) or watched (pull) by this process. */
export interface RunHandle {
  readonly run: RunRecord;
  progress(): Progress;
  onProgress(listener: (progress: Progress) => void): void;
  /**
   * What Ctrl-C does: `stops` the run (first call: stop launching and terminate what runs;
   * second: kill it now), or `detaches` from a run that goes on without this process.
   */
  readonly interrupt: 'stops' | 'detaches';
  stop(): void;
  readonly done: Promise<RunOutcome>;
}

/**
 * How a recorded run is carried to its end: the two dispatches (push, pull) each have one. The
 * engine picks it by the run's recorded dispatch, never by the backend's name.
 */
export interface RunDriver {
  /** Take charge of a run before changing it (push: become its coordinator; pull: nothing, no one holds it). */
  hold(run: RunRecord): Promise<void>;
  /** Carry a held run to its end from this process: drive it, or watch the workers do so. */
  follow(run: RunRecord, options?: { concurrency?: number; stopAtOnce?: boolean }): Promise<RunHandle>;
  /** Stop a run that is still going. */
  cancel(run: RunRecord): Promise<'signalled' | 'settled'>;
  /** Run the gather of a run whose tasks all succeeded, again. */
  gather(run: RunRecord): Promise<GatherOutcome>;
}
