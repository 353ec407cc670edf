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
import { ceilMebibytes } from '../../job/units.js';

const DEFAULT_PE = 'threaded';
const DEFAULT_MEMORY_RESOURCES = ['h_vmem'];
/** Resources Grid Engine turns into an address-space ulimit on the element's processes. */
const ADDRESS_SPACE_LIMITS = new Set(['h_vmem', 's_vmem']);

/**
 * The resources a memory request goes to. Attempts in a container are limited by the engine;
 * an address-space ulimit would only stop the engine's client from starting (a Go program
 * reserves far more address space than it uses), so those ask through mem_free instead.
 */
function memoryResources(names: readonly string[], limitsInside: boolean): string[] {
  if (!limitsInside) return [...names];
  const kept = names.filter((name) => !ADDRESS_SPACE_LIMITS.has(name));
  return kept.length > 0 ? kept : ['mem_free'];
}

/** Grid Engine (SGE, Son of Grid Engine, Debian's gridengine) through qsub, qstat, qacct, qdel, qconf, qhost. */
export class SgeScheduler implements Scheduler {
  readonly name = 'sge';
  readonly firstElement = 1;
  readonly elementVariable = 'SGE_TASK_ID';
  readonly jobIdVariable = 'JOB_ID';
  readonly queueNoun = 'queue';
  readonly commands = ['qsub', 'qstat', 'qdel', 'qacct', 'qconf', 'qhost'] as const;
  readonly submitCommand = 'qsub';
  readonly oomMessage = /exceeded (its )?h_vmem|memory limit exceeded/i;
  readonly memoryLimitFailsAllocations = true;

  constructor(private readonly context: SchedulerContext) {}

  async facts(): Promise<ClusterFacts> {
    const config = await this.call('qconf', ['-sconf']);
    if (config.code !== 0) throw new Error(`qconf -sconf failed: ${said(config)}`);
    const limit = Number(/^max_aj_tasks\s+(\d+)/m.exec(config.stdout)?.[1] ?? 75000);
    const queues = (await this.call('qconf', ['-sql'])).stdout
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
    const { queue } = this.context.sge;
    if (queue !== undefined && !queues.includes(queue.split('@')[0]!)) {
      throw new UserError(`Grid Engine has no queue "${queue}" (qconf -sql lists: ${queues.join(', ') || 'none'})`, 'set sge.queue to one of those, or remove it');
    }
    const hosts = parseQhost((await this.call('qhost', [])).stdout);
    return {
      // 0 means unlimited.
      maxArraySize: limit > 0 ? limit : 75_000,
      largestNode: {
        cpus: Math.max(0, ...hosts.map((host) => host.cpus)),
        memory: Math.max(0, ...hosts.map((host) => host.memory)),
      },
      queues,
    };
  }

  directives(script: ArrayScript): string[] {
    const { sge } = this.context;
    const { resources } = script;
    const lines = [`-N ${script.jobName}`, `-t 1-${script.elements}`, `-o ${script.elementLogPattern.replace('%ELEMENT%', '$TASK_ID')}`, '-j y', '-S /bin/sh', '-cwd'];
    if (resources.cpus > 1) lines.push(`-pe ${sge.pe ?? DEFAULT_PE} ${resources.cpus}`);
    const limits: string[] = [];
    if (resources.memory !== null) {
      // Grid Engine counts memory per slot: a 4-cpu task asking 8G asks 2G a slot.
      const perSlotMb = ceilMebibytes(resources.memory / resources.cpus);
      for (const name of memoryResources(sge.memory ?? DEFAULT_MEMORY_RESOURCES, resources.limitsInside === true)) limits.push(`${name}=${perSlotMb}M`);
    }
    if (resources.timeMs !== null) limits.push(`h_rt=${Math.ceil(resources.timeMs / 1000)}`);
    if (limits.length > 0) lines.push(`-l ${limits.join(',')}`);
    // qdel kills with SIGKILL, which a container outlives (its engine runs it, not the element);
    // with -notify it first sends SIGUSR2, on which the attempt stops its container.
    if (resources.limitsInside) lines.push('-notify');
    if (sge.queue !== undefined) lines.push(`-q ${sge.queue}`);
    lines.push(...(sge.extra ?? []));
    if (script.inheritEnvironment) lines.push('-V');
    return lines.map((line) => `#$ ${line}`);
  }

  async check(scriptPath: string): Promise<string | null> {
    return complaint(await this.submitCall(['-w', 'v'], scriptPath));
  }

  async submit(scriptPath: string): Promise<string> {
    return submittedJobId(await this.submitCall(['-terse'], scriptPath));
  }

  async queued(jobIds: readonly string[]): Promise<Map<string, ElementState>> {
    const output = await this.call('qstat', ['-g', 'd', '-u', userInfo().username]);
    if (output.code !== 0) throw new Error(`qstat failed: ${said(output)}`);
    return parseQstat(output.stdout, new Set(jobIds));
  }

  async errorReasons(jobId: string): Promise<Map<number, string>> {
    const output = await this.call('qstat', ['-j', jobId]);
    if (output.code !== 0) throw new Error(`qstat -j ${jobId} failed: ${said(output)}`);
    return parseErrorReasons(output.stdout);
  }

  async findJob(jobName: string): Promise<string | null> {
    // Queued or running: qstat; ended: the accounting file (both take a job name for an id).
    const queued = await this.call('qstat', ['-j', jobName]);
    const fromQstat = /^job_number:\s+(\d+)/m.exec(queued.stdout)?.[1];
    if (queued.code === 0 && fromQstat !== undefined) return fromQstat;
    const ended = await this.call('qacct', ['-j', jobName]);
    const numbers = [...ended.stdout.matchAll(/^jobnumber\s+(\d+)/gm)].map((match) => match[1]!);
    return ended.code === 0 && numbers.length > 0 ? numbers.at(-1)! : null;
  }

  async ended(elements: readonly ElementRef[]): Promise<Map<string, ElementReport>> {
    const reports = new Map<string, ElementReport>();
    for (const jobId of new Set(elements.map((element) => element.jobId))) {
      // Not found yet is normal: qacct sees a job once the accounting file is flushed.
      const output = await this.call('qacct', ['-j', jobId]);
      if (output.code !== 0) continue;
      for (const [key, report] of parseQacct(output.stdout)) reports.set(key, report);
    }
    return reports;
  }

  async cancel(elements: readonly ElementRef[]): Promise<void> {
    const byJob = new Map<string, number[]>();
    for (const { jobId, element } of elements) byJob.set(jobId, [...(byJob.get(jobId) ?? []), element]);
    for (const [jobId, tasks] of byJob) {
      tasks.sort((a, b) => a - b);
      const contiguous = tasks.at(-1)! - tasks[0]! + 1 === tasks.length;
      // qdel takes one task range per job: a whole run of tasks in one call, else one call each.
      if (contiguous) await this.call('qdel', [jobId, '-t', `${tasks[0]}-${tasks.at(-1)}`]);
      else for (const task of tasks) await this.call('qdel', [jobId, '-t', String(task)]);
    }
  }

  private call(command: string, args: string[]): Promise<CommandOutput> {
    return this.context.commands.run(command, args);
  }

  /** Submissions run in the script's folder: the element logs are named relative to it. */
  private submitCall(args: string[], scriptPath: string): Promise<CommandOutput> {
    return this.context.commands.run('qsub', [...args, scriptPath], { cwd: dirname(scriptPath) });
  }
}

/** `qhost`: HOSTNAME ARCH NCPU NSOC NCOR NTHR LOAD MEMTOT …; the `global` line has dashes. */
export function parseQhost(text: string): Array<{ name: string; cpus: number; memory: number }> {
  const hosts: Array<{ name: string; cpus: number; memory: number }> = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8 || fields[0] === 'HOSTNAME' || fields[0] === 'global' || !/^\d+$/.test(fields[2]!)) continue;
    hosts.push({ name: fields[0]!, cpus: Number(fields[2]), memory: parseSgeSize(fields[7]!) });
  }
  return hosts;
}

/**
 * `qstat -g d -u USER`: one line per array task; pending ones have no queue column, so the
 * state is the fifth field and the task id the last.
 */
export function parseQstat(text: string, jobIds: ReadonlySet<string>): Map<string, ElementState> {
  const states = new Map<string, ElementState>();
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 7 || !jobIds.has(fields[0]!)) continue;
    const task = fields.at(-1)!;
    if (!/^\d+$/.test(task)) continue;
    const state = fields[4]!;
    // Eqw waits for a person (qmod -cj) forever; qw, hqw wait; r, t, Rr, dr, s… have a slot.
    const seen = state.startsWith('E') ? 'error' : state.includes('q') ? 'queued' : 'running';
    states.set(elementKey({ jobId: fields[0]!, element: Number(task) }), seen);
  }
  return states;
}

/** `qstat -j ID`: `error reason    2:      12/02/2026 05:22:27 [0:1324]: error: can't chdir to …`, by task. */
export function parseErrorReasons(text: string): Map<number, string> {
  const reasons = new Map<number, string>();
  for (const match of text.matchAll(/^error reason\s+(\d+):\s+(?:\S+ \S+ \[[^\]]*\]:\s*)?(.*?)\s*$/gm)) reasons.set(Number(match[1]), match[2]!);
  return reasons;
}

/** `qacct -j ID`: blocks of `key value` lines separated by `====` lines, one per task. */
export function parseQacct(text: string): Map<string, ElementReport> {
  const reports = new Map<string, ElementReport>();
  for (const block of text.split(/^=+\s*$/m)) {
    const field = (name: string) => new RegExp(`^${name}\\s+(.*?)\\s*$`, 'm').exec(block)?.[1];
    const jobId = field('jobnumber');
    const task = field('taskid');
    if (jobId === undefined || task === undefined || !/^\d+$/.test(task)) continue;
    const failed = field('failed') ?? '0';
    const exitStatus = Number(field('exit_status') ?? 0);
    const maxvmem = parseSgeSize(field('maxvmem') ?? '0');
    const maxrss = parseQacctMaxrss(field('ru_maxrss') ?? '');
    const wallclockS = parseFloat(field('ru_wallclock') ?? '0');
    const category = field('category') ?? '';
    const end = sgeEnd({ failed, exitStatus, maxvmem, wallclockS, category });
    reports.set(elementKey({ jobId, element: Number(task) }), {
      end,
      detail: `Grid Engine: failed ${failed}, exit status ${exitStatus}, maxvmem ${field('maxvmem') ?? '?'}`,
      usage: { peakMemory: maxrss, cpuMs: Math.round(parseFloat(field('cpu') ?? '0') * 1000) },
      memoryLimitReached: reachedMemoryLimit(maxvmem, category),
    });
  }
  return reports;
}

/**
 * How a task ended, from its accounting: over its `h_rt` → timeout; killed at or near its memory
 * limit (`h_vmem` and the like, from the job's category) → oom; otherwise by its exit.
 */
export function sgeEnd(task: { failed: string; exitStatus: number; maxvmem: number; wallclockS: number; category: string }): ElementEnd {
  const failedCode = parseInt(task.failed, 10) || 0;
  const hRt = categoryLimit(task.category, 'h_rt');
  const killed = task.exitStatus === 137 || task.exitStatus === 152 || failedCode === 37 || failedCode === 100;
  if (killed && hRt !== undefined && task.wallclockS >= parseSgeDuration(hRt) - 1) return { state: 'timeout' };
  if (killed && reachedMemoryLimit(task.maxvmem, task.category)) return { state: 'oom' };
  if (failedCode !== 0 && failedCode !== 100 && failedCode !== 37) return { state: 'node-failure', detail: `failed ${task.failed}` };
  if (failedCode === 0 && task.exitStatus === 0) return { state: 'completed', exitCode: 0 };
  if (task.exitStatus === 137 && failedCode === 100) return { state: 'cancelled' };
  return { state: 'failed', exitCode: task.exitStatus };
}

/** A limit the job asked for (`-l h_vmem=2G,h_rt=60` in qacct's category), as written. */
function categoryLimit(category: string, name: string): string | undefined {
  return new RegExp(`(?:^|[\\s,])${name}=([^,\\s]+)`).exec(category)?.[1];
}

/**
 * The share of a memory limit that counts as reaching it: Grid Engine samples maxvmem, and an
 * allocation that fails under `h_vmem` leaves the peak short of the limit by that allocation.
 */
const MEMORY_LIMIT_MARGIN = 0.9;

/** Whether a task's maxvmem reached one of the memory limits in its category (within the margin). */
function reachedMemoryLimit(maxvmem: number, category: string): boolean {
  return ['h_vmem', 'h_rss', 's_vmem', 'mem_free']
    .map((name) => categoryLimit(category, name))
    .some((value) => value !== undefined && maxvmem >= parseSgeSize(value) * MEMORY_LIMIT_MARGIN);
}

/**
 * qacct's `ru_maxrss`: the kernel's figure in KiB, printed as if it were bytes (`192.066KB` is
 * 192066 KiB); null when absent or 0 (not measured).
 */
export function parseQacctMaxrss(text: string): number | null {
  const match = /^([\d.]+)\s*([KMGT]?)B?$/i.exec(text.trim());
  if (!match) return null;
  const kib = Number(match[1]) * 1000 ** Math.max(' KMGT'.indexOf((match[2] || ' ').toUpperCase()), 0);
  return kib > 0 ? Math.round(kib * 1024) : null;
}

/** `3.324MB`, `23.5G`, `128M`, `4.914KB`, `0.000B` → bytes (Grid Engine's units are powers of 1024). */
export function parseSgeSize(text: string): number {
  const match = /^([\d.]+)\s*([KMGTP]?)B?$/i.exec(text.trim());
  if (!match) return 0;
  const power = ' KMGTP'.indexOf((match[2] || ' ').toUpperCase());
  return Math.round(Number(match[1]) * 1024 ** Math.max(power, 0));
}

/** `70`, `0:1:10`, `00:01:10` → seconds. */
export function parseSgeDuration(text: string): number {
  const parts = text.split(':').map(Number);
  return parts.reduce((total, part) => total * 60 + (Number.isFinite(part) ? part : 0), 0);
}
