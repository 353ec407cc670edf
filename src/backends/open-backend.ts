import { UserError } from '../errors.js';
import type { BackendName } from '../job/job-schema.js';
import type { JobSpec } from '../job/job-spec.js';
import type { Backend, Capacity } from './backend.js';
import { ClusterBackend } from './cluster/cluster-backend.js';
import { resolveClusterSettings } from './cluster/cluster-settings.js';
import { CommandNotFound, SchedulerCommands } from './cluster/scheduler-commands.js';
import type { ClusterFacts, Scheduler, SchedulerContext } from './cluster/scheduler.js';
import { LocalBackend } from './local/local-backend.js';
import { SgeScheduler } from './sge/sge-scheduler.js';
import { SlurmScheduler } from './slurm/slurm-scheduler.js';
import { WorkersBackend } from './workers/workers-backend.js';

/** Where a backend runs a run: its work folder and the name its jobs carry. */
export interface BackendSite {
  runDir: string;
  jobName: string;
}

export interface BackendOptions {
  limits?: Partial<Pick<Capacity, 'cpus' | 'memory'>>;
  graceMs: number;
  /**
   * What schedulers said about their clusters, kept by the caller so that planning a run and
   * then driving it ask once, not twice. Keyed by backend and the partition or queue asked for.
   */
  factsSeen?: Map<string, ClusterFacts>;
}

const SETUP_HINT: Record<'slurm' | 'sge', string> = {
  slurm: 'run fanout on a SLURM submit host (where sbatch and squeue work), or choose another backend; see README "SLURM"',
  sge: 'run fanout on a Grid Engine submit host (where qsub and qstat work; SGE_ROOT set), or choose another backend; see README "Grid Engine"',
};

export function makeScheduler(name: 'slurm' | 'sge', context: SchedulerContext): Scheduler {
  return name === 'slurm' ? new SlurmScheduler(context) : new SgeScheduler(context);
}

/** Read what a scheduler says about its cluster; a missing command becomes a clear refusal. */
export async function readFacts(scheduler: Scheduler): Promise<ClusterFacts> {
  try {
    return await scheduler.facts();
  } catch (error) {
    if (error instanceof CommandNotFound) {
      throw new UserError(`the ${scheduler.name} backend needs \`${error.command}\`, which is not on PATH here`, SETUP_HINT[scheduler.name]);
    }
    throw error;
  }
}

/** The backend a run uses: the one its job names, local when it names none. Cluster backends ask their scheduler about the cluster first. */
export async function openBackend(named: BackendName | null, spec: JobSpec, site: BackendSite, options: BackendOptions): Promise<Backend> {
  const name = named ?? 'local';
  if (name === 'local') return new LocalBackend({ limits: options.limits, graceMs: options.graceMs });
  if (name === 'workers') return new WorkersBackend();
  const settings = resolveClusterSettings(spec);
  const commands = new SchedulerCommands();
  const scheduler = makeScheduler(name, { commands, slurm: settings.slurm, sge: settings.sge });
  const key = `${name}\0${settings.slurm.partition ?? ''}\0${settings.sge.queue ?? ''}`;
  const facts = options.factsSeen?.get(key) ?? (await readFacts(scheduler));
  options.factsSeen?.set(key, facts);
  return new ClusterBackend({ scheduler, commands, settings, facts, runDir: site.runDir, jobName: site.jobName, graceMs: options.graceMs });
}
