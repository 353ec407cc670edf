import type { Capacity } from '../engine/plan-job.js';
import type { AttemptResult } from '../runner/launcher.js';
import type { ProcessIdentity } from '../store/store.js';

/**
 * How an attempt gets compute. The engine decides what runs and when; a backend only starts
 * attempts, stops them, and reports how each one ended. Implementations live in
 * `src/backends/<name>/`, each with the same files.
 */

/** Everything needed to run one attempt, already rendered. */
export interface AttemptLaunch {
  /** Unique among this coordinator's attempts; results are reported under it. */
  id: number;
  /** The attempt's own folder: logs and the result record go here. */
  attemptDir: string;
  /** Where the command runs (the attempt folder for tasks, the outdir for the gather). */
  cwd: string;
  /** Where the attempt writes its outputs, committed to `finalOut` only on success. */
  stagingOut?: string;
  finalOut?: string;
  cpus: number;
  memoryBytes: number | null;
  timeMs: number | null;
  command: string;
  env: Record<string, string>;
}

/** An attempt a previous coordinator launched and did not see end. */
export interface OrphanAttempt {
  id: number;
  attemptDir: string;
}

export type ResultListener = (id: number, result: AttemptResult) => void;

export interface Backend {
  readonly name: string;
  /** The most one attempt can ask for, and whether attempts share it (see Capacity.shared). */
  capacity(): Capacity;
  /** How many attempts may be in flight when the job and the user do not say (null: as many as fit). */
  defaultConcurrency(): number | null;
  /**
   * Get ready to run attempts. Returns the identity of what supervises them, which the engine
   * records so that a later coordinator can adopt attempts still running after a crash.
   */
  start(onResult: ResultListener): Promise<ProcessIdentity | null>;
  submit(launches: AttemptLaunch[]): void;
  /** Stop attempts: gracefully (terminate, then kill after the grace period) or at once. */
  cancel(ids: number[], options: { force: boolean }): void;
  /**
   * Watch attempts an earlier coordinator launched under `supervisor`: each is reported through
   * the result listener when it ends, as `lost` if it vanished without a result record.
   */
  adopt(orphans: OrphanAttempt[], supervisor: ProcessIdentity | null): void;
  close(): Promise<void>;
}
