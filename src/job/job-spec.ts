import type { ResourceField } from './resource-expression.js';
import type { BackendName, ClusterSettings, ContainerEngineName, ContainerSettings, NotifyEvent, PullPolicy, SgeSettings, SlurmSettings } from './job-schema.js';

/**
 * The compiled job: what a job file means once it has been validated, defaults filled and units
 * converted (memory in bytes, time in ms, paths absolute). Code after `compileJob` trusts it.
 */

export type Scalar = string | number | boolean;

export type TaskSource =
  | { kind: 'each'; items: Array<Scalar | Record<string, Scalar>> }
  | { kind: 'matrix'; axes: Record<string, Scalar[]> }
  /** `glob` as written; relative globs match from `cwd` (the job file's folder). */
  | { kind: 'files'; glob: string; cwd: string }
  /** `parent` is an absolute folder. */
  | { kind: 'folders'; parent: string }
  /** `file` is an absolute CSV (`,`) or TSV (`\t`, by extension `.tsv`/`.tab`) file. */
  | { kind: 'table'; file: string }
  | {
      kind: 'chunks';
      file: string;
      format: 'fasta' | 'fastq' | 'lines';
      /** Exactly one of count and sizeBytes is set. */
      count?: number;
      sizeBytes?: number;
    };

export type FailureReason = 'exit' | 'oom' | 'timeout' | 'lost' | 'infra';
export type AttemptReason = 'ok' | FailureReason | 'cancelled';

/** Every way an attempt can end. */
export const ATTEMPT_REASONS: ReadonlySet<string> = new Set<AttemptReason>(['ok', 'exit', 'oom', 'timeout', 'lost', 'infra', 'cancelled']);

export interface Resources {
  cpus: number;
  /** null: not limited and not reserved. */
  memory: number | null;
  /** null: no time limit. */
  timeMs: number | null;
}

export interface RetryPolicy {
  /** Retries after the first attempt; 0 means one attempt. */
  max: number;
  on: FailureReason[];
  escalate: { memory: number; time: number };
  /**
   * Failures of the platform (`lost`, `infra`) retried per task without spending `max`; past
   * this many, they are charged like any other failure.
   */
  platformMax: number;
}

export interface JobSpec {
  name: string;
  /** Absolute path of the job file, or a label such as `<api>` when built in code. */
  file: string;
  /** Relative paths in the job file resolve against this folder. */
  baseDir: string;
  /** The command template (from `command` or `script`). */
  command: string;
  /** Which field the command came from, for error locations. */
  commandField: 'command' | 'script';
  tasks: TaskSource;
  vars: Record<string, string>;
  /**
   * Extra environment variables of every task and of the gather: name → value template, the
   * value inserted as it is. Never a FANOUT_* name. Runs recorded by a fanout without `env:` have
   * no such field in their stored spec: read it as `spec.env ?? {}`.
   */
  env?: Record<string, string>;
  /**
   * Shell line templates run before the command in its shell (`setup:`), for tasks and the
   * gather. Runs recorded by a fanout without `setup:` have no such field: read it as `spec.setup ?? []`.
   */
  setup?: string[];
  /** Every task's resources, except the fields in `perTaskResources`, which hold the defaults. */
  resources: Resources;
  /**
   * The resource fields each task computes for itself, as written: templates (`{{ mem }}`) and
   * expressions over input sizes (`2GB + 3 * size(file)`). Runs recorded by a fanout without
   * them have no such field in their stored spec: read it as `spec.perTaskResources ?? {}`.
   */
  perTaskResources?: Partial<Record<ResourceField, string>>;
  retry: RetryPolicy;
  /** null: as many as the machine's resources allow. */
  concurrency: number | null;
  /** Absolute folder where committed task outputs live. */
  /** A folder, or an object-storage URI (s3://bucket/prefix). */
  outdir: string;
  /** Skip tasks whose committed outputs are already in the outdir, cache or not. */
  skipIfOutputsExist: boolean;
  /**
   * What every task must leave in its output folder for its attempt to succeed. Runs recorded by
   * a fanout without `outputs:` have no such field in their stored spec: read it as `spec.outputs ?? []`.
   */
  outputs?: DeclaredOutput[];
  gather: string | null;
  /** Where the gather runs: `backend`, where the tasks run; `local`, where the coordinator runs. */
  gatherOn: 'backend' | 'local';
  /** From the job file; the CLI's `--backend` overrides it. null: local. */
  backend: BackendName | null;
  profile: string | null;
  /** Absolute; null: under the fanout home. */
  workdir: string | null;
  /** Backend settings as the job file gives them; config files fill in the rest. */
  cluster: ClusterSettings;
  slurm: SlurmSettings;
  sge: SgeSettings;
  /** The `container:` block as the job file gives it; config files fill in the rest when the run is planned. */
  container: ContainerSettings;
  /**
   * The container every task and the gather run in, resolved when the run was planned (config,
   * profile and job file merged, engine found, image identities read); null: none. Runs recorded
   * by a fanout without containers have no such field in their stored spec: read it as
   * `spec.containerPlan ?? null`.
   */
  containerPlan?: ContainerPlan | null;
  /**
   * Alerts when the run ends or a task fails for good; null: none. Runs recorded by a fanout
   * without alerts have no such field in their stored spec: read it as `spec.notify ?? null`.
   */
  notify: NotifySpec | null;
}

/** One entry of `outputs:`: a path or glob relative to the task's output folder. */
export interface DeclaredOutput {
  path: string;
  /** Each match must be a file with at least one byte (or a folder with something in it). */
  nonEmpty: boolean;
}

export interface NotifySpec {
  /** An http(s) URL that gets a POST of the JSON summary; null: none. */
  webhook: string | null;
  /** A shell command that gets the JSON summary on stdin; null: none. */
  command: string | null;
  /** Events alerted on, without duplicates. */
  on: NotifyEvent[];
}

/**
 * One task before it is rendered: the variables its source gives it and the input files whose
 * identity belongs in its cache key.
 */
export interface TaskSeed {
  index: number;
  /** Unique in the job; a single path segment (it names the output folder). */
  name: string;
  /** Variables from the task source (not `index`, `name`, `out`, nor the job's `vars`). */
  vars: Record<string, string>;
  /** Absolute paths of files or folders the task reads, for the cache key. */
  inputs: string[];
  /** Where the task comes from when its name does not say, e.g. a table row (`samples.csv:3`), for messages. */
  origin?: string;
}

/** A job's container, resolved when its run is planned; what every attempt's command line is built from. */
export interface ContainerPlan {
  engine: ContainerEngineName;
  /** The image as a template over the task's variables. */
  image: string;
  /** Extra mounts as written (templates): PATH, SRC:DEST or SRC:DEST:ro; relative sources are under the job file's folder. */
  mounts: string[];
  /** Extra engine flags. */
  options: string[];
  pull: PullPolicy;
  /**
   * `element`: on a cluster, one container per array element runs its packed tasks. Plans
   * recorded before this option have none: read it as `per ?? 'task'`.
   */
  per?: 'task' | 'element';
  /**
   * Each image the tasks name (rendered) → its identity when planned: the engine's image id
   * (sha256:…, content-addressed: a tag moved to new content has a new one), or for an image
   * file its path, size and time; null when it could not be read.
   */
  digests: Record<string, string | null>;
}
