import { join } from 'node:path';
import { UserError } from '../../errors.js';
import type { JobSpec } from '../../job/job-spec.js';
import { configPlaces, configuredSettings } from '../../job/config-files.js';
import type { SgeSettings, SlurmSettings } from '../../job/job-schema.js';
import { parseDuration } from '../../job/units.js';

/** Cluster settings as a run uses them: merged from config files, profile and job file (src/job/config-files.ts), defaults filled. */

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

/** Template folders besides the one a job names: user, then site. */
export function templatePlaces(env: NodeJS.ProcessEnv = process.env): string[] {
  const [site, user] = configPlaces(env);
  return [...(env.FANOUT_TEMPLATES ? [env.FANOUT_TEMPLATES] : []), join(user!.path, '..', 'templates'), join(site!.path, '..', 'templates')];
}

/** The settings a job runs with on a cluster: config files, profile and job file merged. */
export function resolveClusterSettings(spec: JobSpec, env: NodeJS.ProcessEnv = process.env): ResolvedClusterSettings {
  const merged = configuredSettings(spec, env);
  const { cluster } = merged;
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
