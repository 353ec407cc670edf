import type { SgeSettings, SlurmSettings } from '../../job/job-schema.js';
import type { SchedulerCommands } from './scheduler-commands.js';

/**
 * What a cluster backend needs from one batch scheduler (SLURM, Grid Engine). The backend owns
 * arrays, packing, polling and failure classes; a scheduler only speaks its own commands.
 */

/** One element of an array job, as the scheduler names it. */
export interface ElementRef {
  jobId: string;
  element: number;
}

export function elementKey(ref: ElementRef): string {
  return `${ref.jobId}.${ref.element}`;
}

/** What the cluster looks like to the submitting user, read once per run. */
export interface ClusterFacts {
  /** The most elements one array may have. */
  maxArraySize: number;
  /** The largest node that jobs here may use (in the chosen partition or queue). */
  largestNode: { cpus: number; memory: number };
  /** Partitions or queues jobs may name, for "did you mean". */
  queues: string[];
}

/** Resources every element of one array asks for. */
export interface ElementResources {
  cpus: number;
  memory: number | null;
  /** For the whole element: the sum over the attempts packed into it, plus a margin. */
  timeMs: number | null;
  /**
   * The attempts enforce their memory themselves (in a container): the element reserves it, but a
   * limit on the element's own processes (an address-space ulimit) would only break the engine's client.
   */
  limitsInside?: boolean;
}

export interface ArrayScript {
  jobName: string;
  elements: number;
  /** Each element's scheduler output (the runner's own errors; attempts log to their folders). */
  elementLogPattern: string;
  resources: ElementResources;
  /**
   * Give each element the submitting shell's environment (pull workers need its PATH and the
   * store's settings). SLURM does so by default; Grid Engine only when asked (`-V`).
   */
  inheritEnvironment?: boolean;
}

export type ElementState = 'queued' | 'running' | 'error';

/** How an element ended, by the scheduler's account. */
export type ElementEnd =
  | { state: 'completed'; exitCode: number | null }
  | { state: 'failed'; exitCode: number | null }
  | { state: 'oom' }
  | { state: 'timeout' }
  /** The node or the scheduler failed it: preempted, node failure, boot failure. */
  | { state: 'node-failure'; detail: string }
  | { state: 'cancelled' }
  /** The scheduler no longer knows (or does not yet know) how it ended. */
  | { state: 'unknown' };

export interface ElementUsage {
  /** Null where the accounting has no figure. */
  peakMemory: number | null;
  cpuMs: number;
}

export interface ElementReport {
  end: ElementEnd;
  /** What the scheduler said, for the attempt's error text. */
  detail: string;
  usage?: ElementUsage;
  /** The element's memory reached its limit (within a margin), whatever its exit. */
  memoryLimitReached?: boolean;
}

export interface Scheduler {
  readonly name: 'slurm' | 'sge';
  /** The array index of the first element (SLURM 0, Grid Engine 1). */
  readonly firstElement: number;
  /** The environment variable an element's index is in. */
  readonly elementVariable: string;
  /** The environment variable an element's job id is in. */
  readonly jobIdVariable: string;
  /** What the scheduler calls the queues jobs are submitted to. */
  readonly queueNoun: 'partition' | 'queue';
  /** Commands it needs on the submitting machine. */
  readonly commands: readonly string[];
  readonly submitCommand: string;
  /** What it writes into an element's log when it kills the element for its memory. */
  readonly oomMessage: RegExp;
  /**
   * Its memory limit makes the program's own allocations fail (Grid Engine's `h_vmem` is an
   * address-space limit: Python's MemoryError, C++'s bad_alloc, exit 1) instead of killing it,
   * so a failed exit is oom only if the element's accounting shows its memory at the limit.
   */
  readonly memoryLimitFailsAllocations: boolean;
  facts(): Promise<ClusterFacts>;
  /** The directive lines (`#SBATCH …`, `#$ …`) of an array's submission script. */
  directives(script: ArrayScript): string[];
  /** Ask the scheduler to check a script without queueing it; returns its complaint, or null. */
  check(scriptPath: string): Promise<string | null>;
  /** Queue a script; returns the job id. Throws SubmitError with the scheduler's words. */
  submit(scriptPath: string): Promise<string>;
  /**
   * One call for the whole run: which elements of these jobs are still queued, running, or held
   * in an error state that needs a person (Grid Engine's `Eqw`: it would wait there forever).
   */
  queued(jobIds: readonly string[]): Promise<Map<string, ElementState>>;
  /** Why elements of a job are in the error state, by element; what the scheduler says. */
  errorReasons?(jobId: string): Promise<Map<number, string>>;
  /**
   * The id of the job with this name, queued or recently ended; null when the scheduler knows
   * none. A coordinator that died between a submission and writing its job id finds it so.
   */
  findJob(jobName: string): Promise<string | null>;
  /** How elements that left the queue ended (keyed by elementKey); unknown ones may be missing. */
  ended(elements: readonly ElementRef[]): Promise<Map<string, ElementReport>>;
  cancel(elements: readonly ElementRef[]): Promise<void>;
}

export interface SchedulerContext {
  commands: SchedulerCommands;
  slurm: SlurmSettings;
  sge: SgeSettings;
}
