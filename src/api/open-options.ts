import type { EngineOptions } from '../engine/engine.js';
import { FanoutApiError } from '../errors.js';
import { homeFolder, storeLocation } from '../cli/cli-context.js';
import {
  jobFileSchema,
  type BackendName,
  type ClusterSettings,
  type ContainerSettings,
  type JobDefinition,
  type SgeSettings,
  type SlurmSettings,
} from '../job/job-schema.js';
import type { Locate } from '../job/field-location.js';
import { resolveLocation } from '../storage/location.js';
import { parseDuration, parseMemory } from '../job/units.js';
import { closest, issueToError } from '../job/validate-job-file.js';
import { SETTINGS_READERS } from '../backends/settings-readers.js';

/** What `Fanout.open` takes. */
export interface FanoutOptions {
  /** The fanout home: state (SQLite) and attempt folders. Default: `FANOUT_HOME`, else `.fanout` in the current folder, as for the CLI. */
  home?: string;
  /** A `postgres://` URL for the state. Default: `FANOUT_STORE`, else SQLite in the home. */
  store?: string;
  /** Where tasks run unless a job says otherwise: `local` (default), `slurm`, `sge` or `workers`. */
  backend?: BackendName;
  /** Cpus fanout may use on this machine (local backend; default all). */
  cpus?: number;
  /** Memory fanout may use on this machine, e.g. `8GB` (local backend; default all). */
  memory?: string;
  /** Between terminate and kill when an attempt is stopped, e.g. `10s` (the default). */
  grace?: string;
  /** Default for every run: the most tasks running at once. */
  concurrency?: number;
  /** Default for every run: a profile of the fanout config file. */
  profile?: string;
  /** Default for every run: where attempt folders live (relative to the current folder). */
  workdir?: string;
  /** Default cluster settings for every run (slurm and sge backends), as in a job file. */
  cluster?: ClusterSettings;
  /** Default SLURM settings for every run, as in a job file. */
  slurm?: SlurmSettings;
  /** Default Grid Engine settings for every run, as in a job file. */
  sge?: SgeSettings;
  /** Default container for every run (image, engine, mounts, options, pull), as in a job file; a job's own keys win. */
  container?: ContainerSettings;
}

/** The job-file fields `Fanout.open` may give defaults for. */
const JOB_DEFAULT_KEYS = ['backend', 'concurrency', 'profile', 'workdir', 'cluster', 'slurm', 'sge', 'container'] as const;
/** @internal */
export type JobDefaults = Pick<JobDefinition, (typeof JOB_DEFAULT_KEYS)[number]>;

const ENGINE_KEYS = ['home', 'store', 'cpus', 'memory', 'grace'] as const;
const OPEN_OPTION_KEYS: readonly string[] = [...ENGINE_KEYS, ...JOB_DEFAULT_KEYS];

const LABEL = '<Fanout.open>';

/** @internal Check `Fanout.open`'s options once; what comes out is trusted. */
export function compileOpenOptions(options: FanoutOptions): { engine: EngineOptions; defaults: JobDefaults } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new FanoutApiError('bad-option', 'Fanout.open takes an object of options', `known options: ${OPEN_OPTION_KEYS.join(', ')}`);
  }
  refuseUnknownKeys(options as Record<string, unknown>, OPEN_OPTION_KEYS, 'Fanout.open');
  const defaults: Record<string, unknown> = {};
  for (const key of JOB_DEFAULT_KEYS) if (options[key] !== undefined) defaults[key] = options[key];
  const locate: Locate = (field) => ({ file: LABEL, field });
  const parsed = jobFileSchema
    .pick({ backend: true, concurrency: true, profile: true, workdir: true, cluster: true, slurm: true, sge: true, container: true })
    .safeParse(defaults, { reportInput: true });
  if (!parsed.success) {
    const error = issueToError(parsed.error.issues[0]!, locate);
    throw new FanoutApiError('bad-option', error.message, error.fix ?? `see the job-file field in schema/job.schema.json`, { cause: error });
  }
  if (options.backend !== undefined) {
    for (const [settings, readers] of Object.entries(SETTINGS_READERS)) {
      if (options[settings as keyof typeof SETTINGS_READERS] !== undefined && !readers.includes(options.backend)) {
        throw new FanoutApiError(
          'bad-option',
          `the ${options.backend} backend does not use \`${settings}\` settings`,
          `drop \`${settings}\`, or open with backend: ${readers.map((r) => `'${r}'`).join(' or ')}`,
        );
      }
    }
  }
  if (typeof defaults.workdir === 'string') defaults.workdir = resolveLocation(process.cwd(), defaults.workdir);
  return {
    engine: {
      home: homeFolder({ home: optionalString(options.home, 'home') }),
      store: storeLocation({ store: optionalString(options.store, 'store') }),
      limits: {
        cpus: options.cpus === undefined ? undefined : positiveInteger(options.cpus, 'cpus'),
        memory: options.memory === undefined ? undefined : parsedOption(parseMemory(String(options.memory)), 'memory', options.memory, 'a size such as 8GB'),
      },
      graceMs: options.grace === undefined ? undefined : parsedOption(parseDuration(String(options.grace)), 'grace', options.grace, 'a duration such as 10s'),
    },
    defaults: parsed.data,
  };
}

/** @internal Refuse keys an options object does not know, naming the known ones (and the likely one meant). */
export function refuseUnknownKeys(options: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const meant = closest(key, [...known]);
    throw new FanoutApiError('bad-option', `${where}: unknown option "${key}"`, `${meant ? `did you mean "${meant}"? ` : ''}known options: ${known.join(', ')}`);
  }
}

/**
 * @internal A job with the open defaults filled in: the job's own fields win; of the settings maps
 * (cluster, slurm, sge, container) each key the job sets wins.
 */
export function withDefaults(job: unknown, defaults: JobDefaults): unknown {
  if (typeof job !== 'object' || job === null || Array.isArray(job)) return job;
  const merged: Record<string, unknown> = { ...job };
  for (const [key, value] of Object.entries(defaults)) {
    const own = merged[key];
    if (own === undefined) merged[key] = value;
    else if (isPlainMap(own) && isPlainMap(value)) merged[key] = { ...value, ...own };
  }
  return merged;
}

function isPlainMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown, option: string): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  throw new FanoutApiError(
    'bad-option',
    `Fanout.open: ${option} must be a string, not ${typeof value}`,
    option === 'store' ? 'pass a postgres:// URL, or leave it out for SQLite in the home' : 'pass a folder path',
  );
}

function positiveInteger(value: unknown, option: string): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1) return value;
  throw new FanoutApiError('bad-option', `Fanout.open: ${option} must be a whole number of at least 1, not ${JSON.stringify(value)}`, `e.g. ${option}: 4`);
}

function parsedOption<T>(value: T | null, option: string, given: unknown, example: string): T {
  if (value !== null) return value;
  throw new FanoutApiError('bad-option', `Fanout.open: ${option} ${JSON.stringify(given)} is not ${example}`, `e.g. ${option}: '${example.split(' ').at(-1)}'`);
}
