import type { JobSpec } from '../job/job-spec.js';
import type { Locate } from '../job/field-location.js';
import type { AttemptResult } from '../runner/launcher.js';
import type { Dispatch, ProcessIdentity } from '../store/records.js';
import type { SharedContainer } from '../container/container-engines.js';

/**
 * How an attempt gets compute. The engine decides what runs and when; a backend only starts
 * attempts, stops them, and reports how each one ended. Implementations live in
 * `src/backends/<name>/`, each with the same files. What differs between backends is declared
 * (`dispatch`, `objectStorage`, `capacity`, the optional `preflight` and `submissionScript`);
 * the engine never asks for a backend by name.
 */

/** The machine (or node) that attempts run on, as far as scheduling is concerned. */
export interface Capacity {
  /** The most one attempt may ask for. */
  cpus: number;
  memory: number;
  /**
   * True when every running attempt draws on this one capacity (one machine). False on a
   * cluster or a fleet of workers: it only bounds one attempt (the largest node), and
   * something else places them.
   */
  shared: boolean;
}

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
  memory: number | null;
  timeMs: number | null;
  command: string;
  env: Record<string, string>;
  /**
   * The command enforces `memory` itself (a container engine does): the runner reserves it but
   * neither limits the command's processes to it nor measures them for it.
   */
  limitsInside?: boolean;
  /**
   * Set when a runner that runs several attempts one after another (a packed cluster element)
   * may run them all in one container (`container.per: element`): what that container needs of
   * this attempt, and the command to run inside it. `command` runs it in a container of its own.
   */
  sharedContainer?: SharedContainer;
}

/** An attempt a previous coordinator launched and did not see end. */
export interface OrphanAttempt {
  id: number;
  attemptDir: string;
}

export type ResultListener = (id: number, result: AttemptResult) => void;

/** A job about to be run, as a backend may check it: its tasks' first attempts, rendered as launches. */
export interface PlanSample {
  spec: JobSpec;
  /** The first tasks' launches (at most `count`); their folders are not created. */
  launches(count: number): AttemptLaunch[];
  /** A scratch folder the check may write to. */
  scratchDir: string;
}

interface BackendTraits {
  readonly name: string;
  /**
   * `push`: a coordinator process submits attempts to this backend and must stay alive while
   * they run. `pull`: attempts wait in the store's queue until a pull worker claims them.
   */
  readonly dispatch: Dispatch;
  /** Whether tasks may read inputs from and write outputs to object storage (the compute side stages them). */
  readonly objectStorage: boolean;
  /** The most one attempt can ask for, and whether attempts share it (see Capacity.shared). */
  capacity(): Capacity;
  /** How many attempts may be in flight when the job and the user do not say (null: as many as fit). */
  defaultConcurrency(): number | null;
  /**
   * Refuse, before a run is recorded, what the backend would refuse later (a cluster asks its
   * scheduler to check the first array without queueing it). Throws a UserError.
   */
  preflight?(sample: PlanSample, locate: Locate): Promise<void>;
  /** The script that would submit the first attempts (`fanout render`), for backends that submit scripts. */
  submissionScript?(sample: PlanSample): string;
}

/** A backend that a coordinator drives: local processes, SLURM, Grid Engine. */
export interface PushBackend extends BackendTraits {
  readonly dispatch: 'push';
  /**
   * Get ready to run attempts. Returns the identity of what supervises them, which the engine
   * records so that a later coordinator can adopt attempts still running after a crash.
   */
  start(onResult: ResultListener): Promise<ProcessIdentity | null>;
  /**
   * The process of ours that supervises attempts submitted now (started again if it died), which
   * the engine records with each attempt; null when the backend's own service supervises them (a
   * scheduler's queue).
   */
  supervisor(): ProcessIdentity | null;
  submit(launches: AttemptLaunch[]): void;
  /** Stop attempts: gracefully (terminate, then kill after the grace period) or at once. */
  cancel(ids: number[], options: { force: boolean }): void;
  /**
   * Watch attempts an earlier coordinator launched under `supervisor` (what `supervisor()` said
   * then; may be called once per supervisor): each is reported through the result listener when
   * it ends, as `lost` if it vanished without a result record.
   */
  adopt(orphans: OrphanAttempt[], supervisor: ProcessIdentity | null): void;
  close(): Promise<void>;
}

/** A backend whose attempts pull workers claim from the store (src/worker/): nothing to drive in process. */
export interface PullBackend extends BackendTraits {
  readonly dispatch: 'pull';
}

export type Backend = PushBackend | PullBackend;
