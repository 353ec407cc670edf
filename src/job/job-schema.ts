import { z } from 'zod';

/**
 * The job file as users write it. This schema is the contract: the loader validates against it
 * and `fanout schema` publishes it as JSON Schema (checked in as schema/job.schema.json).
 */

const scalar = z.union([z.string(), z.number(), z.boolean()]);

const memory = z.string().describe('Memory with a unit: 512MB, 4GB (powers of 1000), 4GiB or 4G (powers of 1024).');
const duration = z.string().describe('A duration with a unit: 90s, 30m, 2h, 1d, 1h30m, or HH:MM:SS.');

const chunksSource = z
  .strictObject({
    file: z.string().describe('The file to split, relative to the job file.'),
    format: z.enum(['fasta', 'fastq', 'lines']).optional().describe('Record format; default from the extension (.fa/.fasta/.fna/.faa, .fq/.fastq), else lines.'),
    count: z.int().min(1).optional().describe('Split into at most this many chunks of about equal size.'),
    size: memory.optional().describe('Split into chunks of at most this size (a record is never split).'),
  })
  .describe('Split one big file on record boundaries; one task per chunk ({{ chunk }}).');

export const taskSourceKeys = ['each', 'matrix', 'files', 'folders', 'table', 'chunks'] as const;

const tasks = z
  .strictObject({
    each: z
      .array(z.union([scalar, z.record(z.string(), scalar)]))
      .min(1)
      .optional()
      .describe('One task per value ({{ item }}) or per map (each key a variable).'),
    matrix: z.record(z.string(), z.array(scalar).min(1)).optional().describe('A map of lists: one task per combination.'),
    files: z.string().optional().describe('A glob: one task per matching file ({{ file }}, {{ name }} = stem).'),
    folders: z.string().optional().describe('A parent folder: one task per child folder ({{ folder }}, {{ name }}).'),
    table: z.string().optional().describe('A CSV or TSV file with a header: one task per row, columns become variables.'),
    chunks: chunksSource.optional(),
  })
  .describe('Exactly one source of tasks.');

/** Retries per task: enough for any flaky tool; more only hides a task that always fails. */
const MAX_RETRIES = 100;

const failureReason = z.enum(['exit', 'oom', 'timeout', 'lost', 'infra']);

export const backendNames = ['local', 'slurm', 'sge', 'workers'] as const;

/** Settings every cluster backend shares; a config file may set them too (the job file wins). */
export const clusterSettings = z
  .strictObject({
    pack: z.int().min(1).optional().describe('Run this many tasks one after another in each array element (default 1), for tiny tasks.'),
    queueSize: z.int().min(1).optional().describe('The most array elements fanout keeps queued or running at once (default 500).'),
    submitRate: z.number().positive().optional().describe('The most submissions (sbatch/qsub calls) per second (default 2).'),
    maxArraySize: z.int().min(1).optional().describe("Split arrays at this many elements, if lower than the cluster's own limit."),
    poll: duration.optional().describe('How often to ask the scheduler about the run at first (default 5s); it backs off to 60s while nothing changes.'),
    templates: z.string().optional().describe('A folder of submission-script templates (slurm.sh, sge.sh) that override the built-in ones.'),
  })
  .describe('Options for the cluster backends (slurm, sge).');

const extraLines = z.array(z.string()).describe('Extra scheduler options, one per entry, as you would write them after #SBATCH or #$.');

export const slurmSettings = z
  .strictObject({
    partition: z.string().optional().describe('sbatch --partition.'),
    account: z.string().optional().describe('sbatch --account.'),
    qos: z.string().optional().describe('sbatch --qos.'),
    constraint: z.string().optional().describe('sbatch --constraint.'),
    gres: z.string().optional().describe('sbatch --gres, e.g. gpu:1.'),
    extra: extraLines.optional(),
  })
  .describe('SLURM options.');

export const sgeSettings = z
  .strictObject({
    queue: z.string().optional().describe('qsub -q.'),
    pe: z.string().optional().describe('The parallel environment for tasks with more than one cpu (default threaded): -pe <pe> <cpus>.'),
    memory: z
      .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/))
      .optional()
      .describe('Resource names that get the memory per slot, e.g. [h_vmem] (default) or [mem_free, h_vmem].'),
    extra: extraLines.optional(),
  })
  .describe('Grid Engine options.');

export const containerEngines = ['podman', 'docker', 'apptainer', 'singularity'] as const;
export const pullPolicies = ['missing', 'always', 'never'] as const;

/** The image every task (and the gather) runs in; a config file may set defaults (the job file wins). */
export const containerSettings = z
  .strictObject({
    image: z
      .string()
      .optional()
      .describe("The image, a template over the task's variables: localhost/tool:1.2, docker.io/biocontainers/samtools:1.17, or a .sif file for apptainer/singularity."),
    engine: z
      .enum(containerEngines)
      .optional()
      .describe("Which engine runs it (default: the config's, else the first of podman, docker, apptainer, singularity found on PATH)."),
    mounts: z
      .array(z.string().min(1))
      .optional()
      .describe(
        "Extra folders to bind-mount (templates): PATH (at the same path), SRC:DEST or SRC:DEST:ro. Inputs, {{ out }}, the attempt folder and the job file's folder are mounted at their own paths without asking.",
      ),
    options: z.array(z.string()).optional().describe('Extra engine flags, one per entry, e.g. [--network=none] or [--gpus, all].'),
    per: z
      .enum(['task', 'element'])
      .optional()
      .describe(
        'task (default): every task starts a container of its own. element: on SLURM and Grid Engine, one container runs all the tasks packed into an array element (cluster.pack) one after another, paying the container start once per element; the image needs a POSIX shell with sed, awk and date (busybox is enough). Other backends start one per task.',
      ),
    pull: z
      .enum(pullPolicies)
      .optional()
      .describe(
        'missing (default): pull an image not present, once, before the run starts; always: pull it before every run; never: refuse a run whose image is not present.',
      ),
  })
  .describe('Run each task in a container image (podman, docker, apptainer or singularity).');

export const notifyEvents = ['finished', 'failed', 'task_failed'] as const;

const notifySettings = z
  .strictObject({
    webhook: z.string().optional().describe('An http:// or https:// URL that gets a POST of the JSON summary (retried a few times; never blocks the run).'),
    command: z.string().min(1).optional().describe('A shell command run with the JSON summary on its stdin (with a time limit).'),
    on: z
      .array(z.enum(notifyEvents))
      .min(1)
      .optional()
      .describe(
        'When to alert: finished (every task and the gather succeeded), failed (the run ended failed), task_failed (each task that fails with no retry left). Default [finished, failed].',
      ),
  })
  .describe('Alerts when a run ends: a webhook and/or a command. At least one of webhook and command.');

export const jobFileSchema = z
  .strictObject({
    $schema: z.string().optional().describe('Editors may point this at the published JSON Schema.'),
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/)
      .optional()
      .describe('Job name (default: the file name without extension). Letters, digits, ".", "_", "-".'),
    command: z.string().min(1).optional().describe('Shell command template run once per task.'),
    script: z.string().min(1).optional().describe('Multi-line shell script template run once per task.'),
    tasks,
    vars: z.record(z.string(), scalar).optional().describe('Shared values; `--set key=value` overrides them.'),
    env: z
      .record(z.string(), scalar)
      .optional()
      .describe(
        "Extra environment variables for every task and the gather. Values are templates over the task's variables, inserted as they are (no shell quoting, no $VAR expansion); names FANOUT_* are fanout's own.",
      ),
    setup: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe(
        'Shell lines run before the command in the same shell, on every backend and for the gather (e.g. `module load samtools/1.17`); templates like the command. A line that exits non-zero fails the attempt before the command runs.',
      ),
    resources: z
      .strictObject({
        cpus: z
          .union([z.int().min(1), z.string()])
          .optional()
          .describe('Cores per task (default 1): a whole number, or a template or expression giving one per task, e.g. "{{ threads }}".'),
        memory: z
          .string()
          .optional()
          .describe(
            'Memory per task; an attempt past it is stopped and recorded as oom. A size with a unit (512MB, 4GB, 4GiB or 4G), or a template or expression giving one per task, e.g. "{{ mem }}" or "2GB + 3 * size(file)".',
          ),
        time: z
          .string()
          .optional()
          .describe(
            'Time per attempt; an attempt past it is stopped and recorded as timeout. A duration (90s, 30m, 2h, 1h30m, HH:MM:SS), or a template or expression giving one per task, e.g. "{{ hours }}h" or "10m + 2s * size(chunk) / 1MB".',
          ),
      })
      .optional()
      .describe(
        "What each task gets. Templates render over the task's variables; expressions use numbers, sizes and durations with units, + - * / and parentheses, and size(variable) (the bytes of the file or folder a variable names).",
      ),
    retry: z
      .strictObject({
        max: z.int().min(0).max(MAX_RETRIES).optional().describe(`Retries after the first attempt (default 0, at most ${MAX_RETRIES}).`),
        on: z
          .array(failureReason)
          .min(1)
          .optional()
          .describe('Failure reasons that are retried, spending max (default [oom, timeout, lost]; a failing command, exit, is not retried unless listed).'),
        platform_max: z
          .int()
          .min(0)
          .max(MAX_RETRIES)
          .optional()
          .describe(
            'Attempts lost to the platform (lost: its worker, node or job vanished; infra: staging or submission failed) retried per task without spending max (default 3); past that they count as ordinary failures.',
          ),
        escalate: z
          .strictObject({
            memory: z.number().min(1).optional().describe('Multiply memory by this after an oom.'),
            time: z.number().min(1).optional().describe('Multiply time by this after a timeout.'),
          })
          .optional(),
      })
      .optional(),
    concurrency: z.int().min(1).optional().describe('The most tasks running at once.'),
    backend: z.enum(backendNames).optional().describe('Where tasks run (default local); `--backend` overrides it.'),
    profile: z.string().optional().describe('A named profile from the fanout config file whose settings apply under this file.'),
    workdir: z
      .string()
      .optional()
      .describe(
        "Where attempt folders (logs, result records) and chunk files live: on a cluster, on the nodes' shared filesystem; for pull workers with no shared disk, an s3://bucket/prefix URI (default: .fanout/work).",
      ),
    container: containerSettings.optional(),
    cluster: clusterSettings.optional(),
    slurm: slurmSettings.optional(),
    sge: sgeSettings.optional(),
    outdir: z.string().optional().describe('Where task outputs are kept: a folder, or an s3://bucket/prefix URI (default: fanout-out/<name> in the current folder).'),
    skip_if_outputs_exist: z
      .boolean()
      .optional()
      .describe('Skip a task whose output folder already holds outputs a fanout attempt committed, even when the store has no record of it (default false).'),
    outputs: z
      .array(z.union([z.string().min(1), z.strictObject({ path: z.string().min(1), non_empty: z.boolean().optional() })]))
      .optional()
      .describe(
        'Files each task must leave in {{ out }} (globs allowed; {path, non_empty: true} also refuses empty ones). A task that exits 0 without them fails with reason exit, naming them.',
      ),
    gather: z.string().min(1).optional().describe('Command run once every task succeeded ({{ outputs }}, {{ manifest }}).'),
    gather_on: z
      .enum(['backend', 'local'])
      .optional()
      .describe('Where the gather runs: backend, where the tasks run (default); local, on the machine running `fanout run`, skipping a cluster queue.'),
    notify: notifySettings.optional(),
  })
  .describe('A fanout job file.');

export type JobFile = z.infer<typeof jobFileSchema>;
export type BackendName = (typeof backendNames)[number];
export type ClusterSettings = z.infer<typeof clusterSettings>;
export type SlurmSettings = z.infer<typeof slurmSettings>;
export type SgeSettings = z.infer<typeof sgeSettings>;
export type ContainerSettings = z.infer<typeof containerSettings>;
export type ContainerEngineName = (typeof containerEngines)[number];
export type PullPolicy = (typeof pullPolicies)[number];
export type NotifyEvent = (typeof notifyEvents)[number];

/** The JSON Schema that `fanout schema` prints and the package publishes. */
export function jobFileJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(jobFileSchema),
    $id: 'https://github.com/fanout/fanout/schema/job.schema.json',
    title: 'fanout job file',
  };
}

/** A job as code writes it (the TypeScript API's `submit`): the same fields as a job file. */
export type JobDefinition = z.input<typeof jobFileSchema>;
