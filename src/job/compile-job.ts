import { isAbsolute, resolve } from 'node:path';
import { JobFileError } from '../errors.js';
import type { JobFile } from './job-schema.js';
import type { DeclaredOutput, JobSpec, NotifySpec, Resources, TaskSource } from './job-spec.js';
import { ResourceExpressionError } from './resource-expression.js';
import { compileResource, RESOURCE_FIELDS, type CompiledResource } from './resource-setting.js';
import type { Locate } from './field-location.js';
import { parseDuration, parseMemory } from './units.js';
import { resolvePathValue } from './path-values.js';
import { resolveLocation } from '../storage/location.js';
import { checkSetOverrides } from './set-overrides.js';

export interface CompileContext {
  /** Absolute job-file path, or a label such as `<api>`. */
  file: string;
  defaultName: string;
  baseDir: string;
  cwd: string;
  set: Record<string, string>;
  locate: Locate;
}

/**
 * Retried when `retry.max` allows and `retry.on` is not given: failures a rerun can cure. A
 * failing command (`exit`) is deterministic more often than not, so it is retried only when
 * asked for, as in Nextflow and Snakemake.
 */
const DEFAULT_RETRY_ON = ['oom', 'timeout', 'lost'] as const;
/** Platform failures (lost, infra) retried per task without spending `retry.max`, when `retry.platform_max` is not given. */
export const DEFAULT_PLATFORM_MAX = 3;

/** Fill defaults, convert units and resolve paths; after this, code trusts the JobSpec. */
export function compileJob(job: JobFile, context: CompileContext): JobSpec {
  const { locate, baseDir } = context;
  const name = job.name ?? sanitizeName(context.defaultName);
  const vars: Record<string, string> = {};
  for (const [key, value] of Object.entries(job.vars ?? {})) vars[key] = resolvePathValue(String(value), baseDir);
  checkSetOverrides(context.set, Object.keys(vars), context.file);
  for (const [key, value] of Object.entries(context.set)) vars[key] = resolvePathValue(value, context.cwd);

  const { resources, perTaskResources } = compileResources(job.resources ?? {}, locate);

  if (job.cluster?.poll !== undefined && parseDuration(job.cluster.poll) === null) {
    throw new JobFileError(locate('cluster.poll'), `"${job.cluster.poll}" is not a duration`, 'write a duration with a unit, e.g. 5s or 1m');
  }

  return {
    name,
    file: context.file,
    baseDir,
    command: job.command ?? job.script!,
    commandField: job.command === undefined ? 'script' : 'command',
    tasks: compileTaskSource(job.tasks, baseDir, locate),
    vars,
    env: compileEnv(job.env, locate),
    setup: job.setup === undefined ? [] : typeof job.setup === 'string' ? [job.setup] : job.setup,
    resources,
    perTaskResources,
    retry: {
      max: job.retry?.max ?? 0,
      on: job.retry?.on ?? [...DEFAULT_RETRY_ON],
      escalate: { memory: job.retry?.escalate?.memory ?? 1, time: job.retry?.escalate?.time ?? 1 },
      platformMax: job.retry?.platform_max ?? DEFAULT_PLATFORM_MAX,
    },
    concurrency: job.concurrency ?? null,
    outdir: job.outdir === undefined ? resolve(context.cwd, 'fanout-out', name) : resolveLocation(baseDir, job.outdir),
    skipIfOutputsExist: job.skip_if_outputs_exist ?? false,
    outputs: compileOutputs(job.outputs, locate),
    gather: job.gather ?? null,
    gatherOn: job.gather_on ?? 'backend',
    backend: job.backend ?? null,
    profile: job.profile ?? null,
    workdir: job.workdir === undefined ? null : resolveLocation(baseDir, job.workdir),
    cluster: job.cluster?.templates === undefined ? (job.cluster ?? {}) : { ...job.cluster, templates: resolve(baseDir, job.cluster.templates) },
    slurm: job.slurm ?? {},
    sge: job.sge ?? {},
    container: job.container ?? {},
    notify: compileNotify(job.notify, locate),
  };
}

/** Constant fields become values now; the rest are kept as written, for each task to compute (plan-job.ts). */
function compileResources(written: NonNullable<JobFile['resources']>, locate: Locate): Pick<JobSpec, 'resources' | 'perTaskResources'> {
  const resources: Resources = { cpus: 1, memory: null, timeMs: null };
  const perTaskResources: NonNullable<JobSpec['perTaskResources']> = {};
  for (const field of RESOURCE_FIELDS) {
    const value = written[field];
    if (value === undefined) continue;
    let compiled: CompiledResource;
    try {
      compiled = compileResource(field, value);
    } catch (error) {
      if (error instanceof ResourceExpressionError) throw new JobFileError(locate(`resources.${field}`), error.message, error.fix);
      throw error;
    }
    if ('perTask' in compiled) perTaskResources[field] = compiled.perTask;
    else if (field === 'cpus') resources.cpus = compiled.constant;
    else if (field === 'memory') resources.memory = compiled.constant;
    else resources.timeMs = compiled.constant;
  }
  return { resources, perTaskResources };
}

/** What a shell accepts as a variable name, so every backend can pass it (a cluster node exports it). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Every task gets FANOUT_RUN, FANOUT_OUT, FANOUT_<VAR>...; a job setting one would make fanout's own untrustworthy. */
const RESERVED_ENV_PREFIX = 'FANOUT_';

function compileEnv(env: JobFile['env'], locate: Locate): Record<string, string> {
  const compiled: Record<string, string> = {};
  for (const [name, value] of Object.entries(env ?? {})) {
    if (!ENV_NAME.test(name)) {
      throw new JobFileError(
        locate(`env.${name}`),
        `"${name}" is not an environment variable name`,
        'use letters, digits and _, not starting with a digit (e.g. OMP_NUM_THREADS)',
      );
    }
    if (name.startsWith(RESERVED_ENV_PREFIX)) {
      throw new JobFileError(
        locate(`env.${name}`),
        `${name} is a name fanout sets itself (every FANOUT_* variable is fanout's)`,
        'choose another name; to pass a value to tasks, add it to `vars:` (each task gets FANOUT_<NAME>)',
      );
    }
    const text = String(value);
    if (text.includes('\0')) throw new JobFileError(locate(`env.${name}`), 'contains a NUL character, which no environment variable can hold', 'remove it');
    compiled[name] = text;
  }
  return compiled;
}

/** Declared outputs live in the task's own output folder: a path leaving it could never be checked there. */
function compileOutputs(outputs: JobFile['outputs'], locate: Locate): DeclaredOutput[] {
  return (outputs ?? []).map((entry, i) => {
    const output = typeof entry === 'string' ? { path: entry, nonEmpty: false } : { path: entry.path, nonEmpty: entry.non_empty ?? false };
    if (isAbsolute(output.path) || output.path.split('/').includes('..')) {
      throw new JobFileError(locate(`outputs.${i}`), `"${output.path}" is not inside the task's output folder`, 'write it relative to {{ out }}, e.g. hits.tsv or *.bam');
    }
    return output;
  });
}

/** Alerts go out when the run ends finished or failed, unless `on` says otherwise. */
const DEFAULT_NOTIFY_EVENTS: NotifySpec['on'] = ['finished', 'failed'];

function compileNotify(notify: JobFile['notify'], locate: Locate): NotifySpec | null {
  if (notify === undefined) return null;
  if (notify.webhook !== undefined) checkWebhook(notify.webhook, locate);
  return {
    webhook: notify.webhook ?? null,
    command: notify.command ?? null,
    on: notify.on === undefined ? [...DEFAULT_NOTIFY_EVENTS] : [...new Set(notify.on)],
  };
}

function checkWebhook(text: string, locate: Locate): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new JobFileError(locate('notify.webhook'), `"${text}" is not a URL`, 'write a full URL, e.g. https://hooks.example.org/fanout');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new JobFileError(
      locate('notify.webhook'),
      `"${url.protocol}" is not a webhook scheme`,
      'use an http:// or https:// URL; to alert another way, use `notify.command`',
    );
  }
}

function compileTaskSource(tasks: JobFile['tasks'], baseDir: string, locate: Locate): TaskSource {
  if (tasks.each) return { kind: 'each', items: tasks.each };
  if (tasks.matrix) return { kind: 'matrix', axes: tasks.matrix };
  if (tasks.files !== undefined) return { kind: 'files', glob: tasks.files, cwd: baseDir };
  if (tasks.folders !== undefined) return { kind: 'folders', parent: resolve(baseDir, tasks.folders) };
  if (tasks.table !== undefined) return { kind: 'table', file: resolve(baseDir, tasks.table) };
  const chunks = tasks.chunks!;
  const file = isAbsolute(chunks.file) ? chunks.file : resolve(baseDir, chunks.file);
  const format = chunks.format ?? formatFromExtension(file);
  if (chunks.size !== undefined) {
    const sizeBytes = parseMemory(chunks.size);
    if (sizeBytes === null) {
      throw new JobFileError(locate('tasks.chunks.size'), `"${chunks.size}" is not a size`, 'write a size with a unit, e.g. 10MB');
    }
    return { kind: 'chunks', file, format, sizeBytes };
  }
  return { kind: 'chunks', file, format, count: chunks.count! };
}

function formatFromExtension(file: string): 'fasta' | 'fastq' | 'lines' {
  if (/\.(fa|fasta|fna|faa|ffn)$/i.test(file)) return 'fasta';
  if (/\.(fq|fastq)$/i.test(file)) return 'fastq';
  return 'lines';
}

/** A job named after its file must still be a valid name: `my job.yaml` → `my_job`. */
function sanitizeName(stem: string): string {
  const cleaned = stem.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._-]+/, '');
  return cleaned || 'job';
}
