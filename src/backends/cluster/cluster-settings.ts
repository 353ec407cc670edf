import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { JobFileError, UserError } from '../../errors.js';
import { clusterSettings, sgeSettings, slurmSettings, type ClusterSettings, type SgeSettings, type SlurmSettings } from '../../job/job-schema.js';
import type { JobSpec } from '../../job/job-spec.js';
import { parseYaml } from '../../job/load-job-file.js';
import { issueToError } from '../../job/validate-job-file.js';
import { parseDuration } from '../../job/units.js';

/**
 * Where cluster settings come from, weakest first: fanout's defaults, the site config
 * (/etc/fanout/config.yaml), the user config (~/.config/fanout/config.yaml, or FANOUT_CONFIG),
 * a named profile from either, then the job file. What divvy's compute packages were, in one file.
 */

const sections = { cluster: clusterSettings.optional(), slurm: slurmSettings.optional(), sge: sgeSettings.optional() };
const configSchema = z.strictObject({
  ...sections,
  profiles: z.record(z.string(), z.strictObject(sections)).optional().describe('Named sets of settings; a job picks one with `profile:`.'),
});
type ConfigFile = z.infer<typeof configSchema>;

export interface ResolvedClusterSettings {
  pack: number;
  queueSize: number;
  submitRate: number;
  maxArraySize: number | null;
  pollMs: number;
  /** Template folders, the first with the scheduler's template wins. */
  templateDirs: string[];
  slurm: SlurmSettings;
  sge: SgeSettings;
}

export const DEFAULT_QUEUE_SIZE = 500;
const DEFAULT_SUBMIT_RATE = 2;
export const DEFAULT_POLL_MS = 5_000;

export interface ConfigPlace {
  role: 'site' | 'user';
  path: string;
}

export function configPlaces(env: NodeJS.ProcessEnv = process.env): ConfigPlace[] {
  const userConfig = env.FANOUT_CONFIG ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'fanout', 'config.yaml');
  return [
    { role: 'site', path: env.FANOUT_SITE_CONFIG ?? '/etc/fanout/config.yaml' },
    { role: 'user', path: userConfig },
  ];
}

/** Template folders besides the one a job names: user, then site. */
export function templatePlaces(env: NodeJS.ProcessEnv = process.env): string[] {
  const [site, user] = configPlaces(env);
  return [...(env.FANOUT_TEMPLATES ? [env.FANOUT_TEMPLATES] : []), join(user!.path, '..', 'templates'), join(site!.path, '..', 'templates')];
}

function readConfig(place: ConfigPlace): ConfigFile | null {
  if (!existsSync(place.path)) return null;
  let text: string;
  try {
    text = readFileSync(place.path, 'utf8');
  } catch (error) {
    throw new UserError(`the ${place.role} config ${place.path} cannot be read (${(error as NodeJS.ErrnoException).code})`, 'fix its permissions or remove it');
  }
  const { data, locate } = parseYaml(text, place.path);
  const parsed = configSchema.safeParse(data ?? {}, { reportInput: true });
  if (!parsed.success) throw issueToError(parsed.error.issues[0]!, locate);
  return parsed.data;
}

type Sections = Pick<ConfigFile, 'cluster' | 'slurm' | 'sge'>;

function overlay(into: Required<Sections>, from: Sections | undefined): void {
  if (!from) return;
  Object.assign(into.cluster, from.cluster);
  Object.assign(into.slurm, from.slurm);
  Object.assign(into.sge, from.sge);
}

/** The settings a job runs with on a cluster: config files, profile and job file merged. */
export function resolveClusterSettings(spec: JobSpec, env: NodeJS.ProcessEnv = process.env): ResolvedClusterSettings {
  const merged: Required<Sections> = { cluster: {}, slurm: {}, sge: {} };
  const configs = configPlaces(env).map((place) => ({ place, config: readConfig(place) }));
  for (const { config } of configs) overlay(merged, config ?? undefined);
  if (spec.profile !== null) {
    const found = configs.filter(({ config }) => config?.profiles?.[spec.profile!]);
    if (found.length === 0) {
      const known = configs.flatMap(({ config }) => Object.keys(config?.profiles ?? {}));
      throw new JobFileError(
        { file: spec.file, field: 'profile' },
        `no profile "${spec.profile}" in ${configs.map(({ place }) => place.path).join(' or ')}`,
        known.length ? `known profiles: ${known.join(', ')}` : 'define it under `profiles:` in a config file, or remove `profile:`',
      );
    }
    for (const { config } of found) overlay(merged, config!.profiles![spec.profile]);
  }
  overlay(merged, { cluster: spec.cluster, slurm: spec.slurm, sge: spec.sge });
  const { cluster } = merged as { cluster: ClusterSettings };
  const pollMs = cluster.poll === undefined ? DEFAULT_POLL_MS : parseDuration(cluster.poll);
  if (pollMs === null) throw new UserError(`cluster.poll "${cluster.poll}" in a config file is not a duration`, 'write e.g. 5s');
  return {
    pack: cluster.pack ?? 1,
    queueSize: cluster.queueSize ?? DEFAULT_QUEUE_SIZE,
    submitRate: cluster.submitRate ?? DEFAULT_SUBMIT_RATE,
    maxArraySize: cluster.maxArraySize ?? null,
    pollMs: Number(env.FANOUT_POLL_MS) > 0 ? Number(env.FANOUT_POLL_MS) : pollMs,
    templateDirs: [...(cluster.templates ? [cluster.templates] : []), ...templatePlaces(env)],
    slurm: { ...merged.slurm, extra: [...(merged.slurm.extra ?? [])] },
    sge: { ...merged.sge, extra: [...(merged.sge.extra ?? [])] },
  };
}
