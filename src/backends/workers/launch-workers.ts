import { spawn } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveClusterSettings } from '../cluster/cluster-settings.js';
import { SchedulerCommands } from '../cluster/scheduler-commands.js';
import { makeScheduler, readFacts } from '../open-backend.js';
import { UserError } from '../../errors.js';
import type { JobSpec } from '../../job/job-spec.js';
import { shellQuote } from '../../job/shell-quote.js';
import { MIB } from '../../job/units.js';

/** What `fanout workers start` asks for: N workers, each with these resources. */
export interface WorkerFleet {
  backend: 'local' | 'slurm' | 'sge';
  count: number;
  cpus: number;
  memory: number | null;
  /** The walltime each worker's job asks for (clusters); workers retire before it ends. */
  timeMs: number | null;
  /** Where launch scripts and worker logs go. */
  folder: string;
  /** Arguments every worker gets (store, home, lease, ...). */
  workerArgs: string[];
  /** A config profile for the cluster settings (partition, account, queue, ...). */
  profile: string | null;
}

const FANOUT_BIN = fileURLToPath(new URL('../../../bin/fanout.js', import.meta.url));

/**
 * Start pull workers as processes here or as one array job on a cluster (what dask-jobqueue's
 * `cluster.scale(N)` did). They stop when the queue is empty. Secrets (the store URL's password,
 * S3 credentials) reach them through the environment, never through a script on disk: sbatch
 * exports the submitting environment by default and the Grid Engine script asks for it (`-V`).
 */
export async function launchWorkers(fleet: WorkerFleet): Promise<string> {
  mkdirSync(fleet.folder, { recursive: true });
  const args = ['worker', '--until-empty', '--cpus', String(fleet.cpus), ...fleet.workerArgs];
  if (fleet.memory !== null) args.push('--memory', `${Math.floor(fleet.memory / MIB)}MiB`);
  if (fleet.timeMs !== null) args.push('--lifetime', `${Math.floor(lifetimeWithin(fleet.timeMs) / 1000)}s`);
  if (fleet.backend === 'local') return launchHere(fleet, args);
  return launchOnCluster(fleet, fleet.backend, args);
}

/** Retire early enough to hand tasks back before the scheduler kills the job at its walltime. */
function lifetimeWithin(walltimeMs: number): number {
  return Math.max(walltimeMs * 0.8, walltimeMs - 5 * 60_000);
}

function launchHere(fleet: WorkerFleet, args: string[]): string {
  const pids: number[] = [];
  for (let n = 1; n <= fleet.count; n++) {
    const log = openSync(join(fleet.folder, `worker-${n}.log`), 'a');
    const child = spawn(process.execPath, [FANOUT_BIN, ...args, '--launched-by', `local (fanout workers start, ${fleet.folder})`], {
      detached: true,
      stdio: ['ignore', log, log],
    });
    child.unref();
    if (child.pid !== undefined) pids.push(child.pid);
  }
  return `started ${pids.length} worker(s) here (pids ${pids.join(', ')}); logs in ${fleet.folder}`;
}

async function launchOnCluster(fleet: WorkerFleet, backend: 'slurm' | 'sge', args: string[]): Promise<string> {
  const spec = { profile: fleet.profile, file: '(fanout workers start)', cluster: {}, slurm: {}, sge: {} } as unknown as JobSpec;
  const settings = resolveClusterSettings(spec);
  const commands = new SchedulerCommands();
  const scheduler = makeScheduler(backend, { commands, slurm: settings.slurm, sge: settings.sge });
  const facts = await readFacts(scheduler);
  if (fleet.count > facts.maxArraySize) {
    throw new UserError(`--count ${fleet.count} is more than the cluster's largest array (${facts.maxArraySize})`, `start at most ${facts.maxArraySize} at once`);
  }
  const directives = scheduler.directives({
    jobName: 'fanout-workers',
    elements: fleet.count,
    elementLogPattern: 'worker-%ELEMENT%.log',
    resources: { cpus: fleet.cpus, memory: fleet.memory, timeMs: fleet.timeMs },
    inheritEnvironment: true,
  });
  // Grid Engine's h_vmem caps virtual memory; without this flag Node reserves ~10 GB of address
  // space for WebAssembly (which its HTTP client uses) and dies under any ordinary limit.
  const worker = [process.execPath, '--disable-wasm-trap-handler', FANOUT_BIN, ...args].map(shellQuote).join(' ');
  const script = join(fleet.folder, 'workers.sh');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      ...directives,
      `cd ${shellQuote(process.cwd())} || exit 1`,
      `exec ${worker} --launched-by "${backend} job $${scheduler.jobIdVariable}.$${scheduler.elementVariable}"`,
      '',
    ].join('\n'),
  );
  const complaint = await scheduler.check(script);
  if (complaint !== null) throw new UserError(`${backend} refuses the workers' job: ${complaint}`, 'change --cpus/--memory/--time, or the cluster settings');
  const jobId = await scheduler.submit(script);
  return `submitted ${fleet.count} worker(s) as ${backend} job ${jobId}; logs in ${fleet.folder}`;
}
