import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { JobFileError, UserError } from '../errors.js';
import {
  clusterSettings,
  containerSettings,
  sgeSettings,
  slurmSettings,
  type ClusterSettings,
  type ContainerSettings,
  type SgeSettings,
  type SlurmSettings,
} from './job-schema.js';
import type { JobSpec } from './job-spec.js';
import { parseYaml } from './load-job-file.js';
import { issueToError } from './validate-job-file.js';

/**
 * Where settings beyond the job file come from, weakest first: the site config
 * (/etc/fanout/config.yaml), the user config (~/.config/fanout/config.yaml, or FANOUT_CONFIG),
 * a named profile from either, then the job file. What divvy's compute packages were, in one file.
 */

const sections = {
  cluster: clusterSettings.optional(),
  slurm: slurmSettings.optional(),
  sge: sgeSettings.optional(),
  container: containerSettings.optional(),
};
const configSchema = z.strictObject({
  ...sections,
  profiles: z.record(z.string(), z.strictObject(sections)).optional().describe('Named sets of settings; a job picks one with `profile:`.'),
});
type ConfigFile = z.infer<typeof configSchema>;

/** Every settings block a config file, a profile or a job file may give, merged. */
export interface ConfiguredSettings {
  cluster: ClusterSettings;
  slurm: SlurmSettings;
  sge: SgeSettings;
  container: ContainerSettings;
}

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

type Sections = Partial<ConfiguredSettings>;

function overlay(into: ConfiguredSettings, from: Sections | undefined): void {
  if (!from) return;
  Object.assign(into.cluster, from.cluster);
  Object.assign(into.slurm, from.slurm);
  Object.assign(into.sge, from.sge);
  Object.assign(into.container, from.container);
}

/** The settings a job runs with: config files, its profile and the job file merged. */
export function configuredSettings(spec: JobSpec, env: NodeJS.ProcessEnv = process.env): ConfiguredSettings {
  const merged: ConfiguredSettings = { cluster: {}, slurm: {}, sge: {}, container: {} };
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
  // Stored runs recorded before containers have no `container` in their spec.
  overlay(merged, { cluster: spec.cluster, slurm: spec.slurm, sge: spec.sge, container: spec.container ?? {} });
  return merged;
}
