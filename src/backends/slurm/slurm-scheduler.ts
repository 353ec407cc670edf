import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { UserError } from '../../errors.js';
import { complaint, said, submittedJobId, type CommandOutput } from '../cluster/scheduler-commands.js';
import {
  elementKey,
  type ArrayScript,
  type ClusterFacts,
  type ElementEnd,
  type ElementRef,
  type ElementReport,
  type ElementState,
  type Scheduler,
  type SchedulerContext,
} from '../cluster/scheduler.js';
import { ceilMebibytes, MIB } from '../../job/units.js';

/** SLURM through its command-line tools: sbatch, squeue, sacct or scontrol, scancel, sinfo. */
export class SlurmScheduler implements Scheduler {
  readonly name = 'slurm';
  readonly firstElement = 0;
  readonly elementVariable = 'SLURM_ARRAY_TASK_ID';
  readonly jobIdVariable = 'SLURM_ARRAY_JOB_ID';
  readonly queueNoun = 'partition';
  readonly commands = ['sbatch', 'squeue', 'scancel', 'scontrol', 'sinfo'] as const;
  readonly submitCommand = 'sbatch';
  // cgroups: "Detected 1 oom-kill event(s)"; jobacct_gather with OverMemoryKill: "Exceeded job memory limit".
  readonly oomMessage = /oom-kill event|exceeded (job |step )?memory limit/i;
  // --mem is enforced by killing (cgroups, or jobacct_gather's OverMemoryKill).
  readonly memoryLimitFailsAllocations = false;
  /** Without slurmdbd sacct has nothing; after one refusal fanout asks scontrol instead. */
  private accounting = true;

  constructor(private readonly context: SchedulerContext) {}

  async facts(): Promise<ClusterFacts> {
    const config = await this.call('scontrol', ['show', 'config']);
    const maxArraySize = Number(/^MaxArraySize\s*=\s*(\d+)/m.exec(config.stdout)?.[1] ?? 1001);
    const nodes = parseSinfoNodes((await this.call('sinfo', ['-h', '-N', '-o', '%N|%P|%c|%m'])).stdout);
    const partitions = [...new Set(nodes.map((node) => node.partition))];
    const wanted = this.context.slurm.partition ?? nodes.find((node) => node.isDefault)?.partition;
    if (this.context.slurm.partition !== undefined && !partitions.includes(this.context.slurm.partition)) {
      throw new UserError(
        `SLURM has no partition "${this.context.slurm.partition}" (sinfo lists: ${partitions.join(', ') || 'none'})`,
        'set slurm.partition to one of those, or remove it to use the default partition',
      );
    }
    const usable = nodes.filter((node) => wanted === undefined || node.partition === wanted);
    return {
      // MaxArraySize bounds the index: 0 … MaxArraySize-1, so that many elements.
      maxArraySize: Math.max(1, maxArraySize),
      largestNode: {
        cpus: Math.max(0, ...usable.map((node) => node.cpus)),
        memory: Math.max(0, ...usable.map((node) => node.memoryMb)) * MIB,
      },
      queues: partitions,
    };
  }

  directives(script: ArrayScript): string[] {
    const { slurm } = this.context;
    const { resources } = script;
    const lines = [
      `--job-name=${script.jobName}`,
      `--array=0-${script.elements - 1}`,
      `--output=${script.elementLogPattern.replace('%ELEMENT%', '%a')}`,
      '--nodes=1',
      '--ntasks=1',
      `--cpus-per-task=${resources.cpus}`,
    ];
    if (resources.memory !== null) lines.push(`--mem=${ceilMebibytes(resources.memory)}M`);
    if (resources.timeMs !== null) lines.push(`--time=${Math.ceil(resources.timeMs / 60_000)}`);
    if (slurm.partition !== undefined) lines.push(`--partition=${slurm.partition}`);
    if (slurm.account !== undefined) lines.push(`--account=${slurm.account}`);
    if (slurm.qos !== undefined) lines.push(`--qos=${slurm.qos}`);
    if (slurm.constraint !== undefined) lines.push(`--constraint=${slurm.constraint}`);
    if (slurm.gres !== undefined) lines.push(`--gres=${slurm.gres}`);
    lines.push(...(slurm.extra ?? []));
    return lines.map((line) => `#SBATCH ${line}`);
  }

  async check(scriptPath: string): Promise<string | null> {
    return complaint(await this.submitCall(['--test-only'], scriptPath));
  }

  async submit(scriptPath: string): Promise<string> {
    return submittedJobId(await this.submitCall(['--parsable'], scriptPath));
  }

  async queued(jobIds: readonly string[]): Promise<Map<string, ElementState>> {
    const output = await this.call('squeue', ['-h', '-r', '-u', userInfo().username, '-o', '%i|%T']);
    if (output.code !== 0) throw new Error(`squeue failed: ${said(output)}`);
    return parseSqueue(output.stdout, new Set(jobIds));
  }

  async findJob(jobName: string): Promise<string | null> {
    const queued = await this.call('squeue', ['-h', '-u', userInfo().username, '--name', jobName, '-o', '%F']);
    if (queued.code !== 0) throw new Error(`squeue failed: ${said(queued)}`);
    const fromQueue = /^(\d+)/m.exec(queued.stdout.trim())?.[1];
    if (fromQueue !== undefined) return fromQueue;
    // Ended: the controller remembers jobs for MinJobAge; without accounting that is all there is.
    const recent = await this.call('scontrol', ['-o', 'show', 'job']);
    for (const line of recent.stdout.split('\n')) {
      if (!line.includes(` JobName=${jobName} `)) continue;
      const id = /(?:^|\s)ArrayJobId=(\d+)/.exec(line)?.[1] ?? /^JobId=(\d+)/.exec(line)?.[1];
      if (id !== undefined) return id;
    }
    return null;
  }

  async ended(elements: readonly ElementRef[]): Promise<Map<string, ElementReport>> {
    const jobIds = [...new Set(elements.map((element) => element.jobId))];
    if (this.accounting) {
      const output = await this.call('sacct', ['-n', '-P', '-j', jobIds.join(','), '-o', 'JobID,State,ExitCode,MaxRSS,TotalCPU']);
      if (output.code === 0) return parseSacct(output.stdout);
      this.accounting = false;
    }
    const reports = new Map<string, ElementReport>();
    for (const jobId of jobIds) {
      const output = await this.call('scontrol', ['-o', 'show', 'job', jobId]);
      if (output.code !== 0) continue;
      for (const [key, report] of parseScontrolJobs(output.stdout)) reports.set(key, report);
    }
    return reports;
  }

  async cancel(elements: readonly ElementRef[]): Promise<void> {
    const names = elements.map((element) => `${element.jobId}_${element.element}`);
    for (let at = 0; at < names.length; at += 500) await this.call('scancel', names.slice(at, at + 500));
  }

  private call(command: string, args: string[]): Promise<CommandOutput> {
    return this.context.commands.run(command, args);
  }

  /** Submissions run in the script's folder: the element logs are named relative to it. */
  private submitCall(args: string[], scriptPath: string): Promise<CommandOutput> {
    return this.context.commands.run('sbatch', [...args, scriptPath], { cwd: dirname(scriptPath) });
  }
}

export interface SinfoNode {
  name: string;
  partition: string;
  isDefault: boolean;
  cpus: number;
  memoryMb: number;
}

/** `sinfo -h -N -o '%N|%P|%c|%m'`: one line per node and partition; the default partition has a `*`. */
export function parseSinfoNodes(text: string): SinfoNode[] {
  const nodes: SinfoNode[] = [];
  for (const line of text.split('\n')) {
    const [name, partition, cpus, memory] = line.trim().split('|');
    if (!name || !partition) continue;
    nodes.push({
      name,
      partition: partition.replace(/\*$/, ''),
      isDefault: partition.endsWith('*'),
      cpus: parseInt(cpus ?? '0', 10) || 0,
      memoryMb: parseInt(memory ?? '0', 10) || 0,
    });
  }
  return nodes;
}

const RUNNING_STATES = new Set(['RUNNING', 'COMPLETING', 'CONFIGURING', 'STAGE_OUT', 'SIGNALING', 'RESIZING']);

/** `squeue -h -r -o '%i|%T'`: `123_4|RUNNING`, one array element per line. */
export function parseSqueue(text: string, jobIds: ReadonlySet<string>): Map<string, ElementState> {
  const states = new Map<string, ElementState>();
  for (const line of text.split('\n')) {
    const match = /^(\d+)_(\d+)\|(\S+)/.exec(line.trim());
    if (!match || !jobIds.has(match[1]!)) continue;
    states.set(elementKey({ jobId: match[1]!, element: Number(match[2]) }), RUNNING_STATES.has(match[3]!) ? 'running' : 'queued');
  }
  return states;
}

/** A job state and `exit:signal` exit code, as SLURM prints them, in fanout's terms. */
export function slurmEnd(state: string, exitCode: string): ElementEnd {
  const word = state.split(/\s/)[0]!.replace(/\+$/, '');
  const [code, signal] = exitCode.split(':').map((part) => Number(part));
  switch (word) {
    case 'COMPLETED':
      return { state: 'completed', exitCode: code ?? null };
    case 'FAILED':
      return { state: 'failed', exitCode: signal ? 128 + signal : (code ?? null) };
    case 'OUT_OF_MEMORY':
      return { state: 'oom' };
    case 'TIMEOUT':
    case 'DEADLINE':
      return { state: 'timeout' };
    case 'NODE_FAIL':
    case 'PREEMPTED':
    case 'BOOT_FAIL':
      return { state: 'node-failure', detail: word };
    case 'CANCELLED':
      return { state: 'cancelled' };
    default:
      return { state: 'unknown' };
  }
}

/** `sacct -n -P -o JobID,State,ExitCode,MaxRSS,TotalCPU`: the element's line, then its steps. */
export function parseSacct(text: string): Map<string, ElementReport> {
  const reports = new Map<string, ElementReport>();
  for (const line of text.split('\n')) {
    const [id, state, exitCode, maxRss, totalCpu] = line.trim().split('|');
    const match = /^(\d+)_(\d+)(?:\.(\S+))?$/.exec(id ?? '');
    if (!match || state === undefined) continue;
    const key = elementKey({ jobId: match[1]!, element: Number(match[2]) });
    const report = reports.get(key);
    if (match[3] === undefined) {
      reports.set(key, { end: slurmEnd(state, exitCode ?? '0:0'), detail: `SLURM state ${state}, exit code ${exitCode}`, usage: report?.usage });
    } else if (report) {
      // An empty MaxRSS (no jobacct_gather) is unknown, not 0.
      const peak = maxRss ? parseSlurmSize(maxRss) : null;
      const cpuMs = parseSlurmDuration(totalCpu ?? '');
      const before = report.usage?.peakMemory ?? null;
      report.usage = { peakMemory: peak === null ? before : Math.max(before ?? 0, peak), cpuMs: (report.usage?.cpuMs ?? 0) + cpuMs };
    }
  }
  return reports;
}

/** `scontrol -o show job ID`: one line per element with ArrayTaskId, JobState and ExitCode. */
export function parseScontrolJobs(text: string): Map<string, ElementReport> {
  const reports = new Map<string, ElementReport>();
  for (const line of text.split('\n')) {
    const field = (name: string) => new RegExp(`(?:^|\\s)${name}=(\\S+)`).exec(line)?.[1];
    const jobId = field('ArrayJobId');
    const element = field('ArrayTaskId');
    const state = field('JobState');
    if (jobId === undefined || element === undefined || state === undefined || !/^\d+$/.test(element)) continue;
    const exitCode = field('ExitCode') ?? '0:0';
    const reason = field('Reason');
    reports.set(elementKey({ jobId, element: Number(element) }), {
      end: slurmEnd(state, exitCode),
      detail: `SLURM state ${state}${reason && reason !== 'None' ? ` (${reason})` : ''}, exit code ${exitCode}`,
    });
  }
  return reports;
}

/** `1234K`, `56M`, `2G` → bytes. */
export function parseSlurmSize(text: string): number {
  const match = /^([\d.]+)([KMGTP]?)$/i.exec(text.trim());
  if (!match) return 0;
  const power = ' KMGTP'.indexOf((match[2] || ' ').toUpperCase());
  return Math.round(Number(match[1]) * 1024 ** Math.max(power, 0));
}

/** `[D-][HH:]MM:SS[.mmm]` → ms. */
export function parseSlurmDuration(text: string): number {
  const match = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$/.exec(text.trim());
  if (!match) return 0;
  const [, days, hours, minutes, seconds] = match;
  return Math.round(((Number(days ?? 0) * 24 + Number(hours ?? 0)) * 3600 + Number(minutes) * 60 + Number(seconds)) * 1000);
}
