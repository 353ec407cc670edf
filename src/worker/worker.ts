import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LocalBackend } from '../backends/local/local-backend.js';
import type { AttemptLaunch } from '../backends/backend.js';
import { commitToObjectStorage } from '../engine/committed-outputs.js';
import { GatherStep } from '../engine/gather.js';
import { withDiskFullNote } from '../engine/disk-full.js';
import { earlierStaging, finalOut, removeFolders, stagingOut, type HomeLayout } from '../engine/home-layout.js';
import { QueueDuties } from '../engine/queue-duties.js';
import { ResourceTally } from '../engine/resource-tally.js';
import { taskLaunch } from '../engine/task-launch.js';
import type { Alerts } from '../notify/alerts.js';
import type { AttemptResult } from '../runner/launcher.js';
import { parseTemplate, type Template } from '../job/template.js';
import type { Storage } from '../storage/storage.js';
import type { RunRecord, TaskRecord } from '../store/records.js';
import type { ResultChange } from '../store/run-ledger.js';
import type { Store } from '../store/store.js';
import type { AttemptKey, ClaimedAttempt } from '../store/work-queue.js';
import { attemptSite, clearSite, stageIn, stageOutLogs, type AttemptSite } from './attempt-staging.js';
import { StartNotices } from './start-notices.js';

export interface WorkerOptions {
  store: Store;
  /** Where workdirs, outdirs and inputs are read and written. */
  storage: Storage;
  /** Names attempt folders the way every other process using this store does. */
  layout: HomeLayout;
  /** A local folder of this worker's own: attempts run there when the workdir is in object storage. */
  scratch: string;
  cpus: number;
  memory: number;
  /** The visibility timeout: a worker silent this long loses its attempts (they are retried as `lost`). */
  leaseMs: number;
  /** Stop after this long with nothing to do (null: never). */
  maxIdleMs: number | null;
  /** Hand running attempts back and stop this long after starting (null: never). */
  lifetimeMs: number | null;
  /** Stop as soon as there is nothing to claim (workers launched by `fanout workers start`). */
  untilEmpty: boolean;
  launchedBy: string | null;
  /** Between terminate and kill when an attempt is stopped. */
  graceMs: number;
  /** Where the worker says what it does (one line each). */
  log: (line: string) => void;
  /** Alerts of the runs whose tasks this worker reports or whose end it settles. */
  alerts: Alerts;
  /** How long to wait between claims when the queue is empty (backs off to 8×). */
  pollMs?: number;
}

export type WorkerExit = 'idle' | 'empty' | 'lifetime' | 'stopped';

/** An attempt this worker holds, from claim to report. */
interface Held {
  key: AttemptKey;
  run: RunRecord;
  site: AttemptSite;
  cpus: number;
  memory: number;
  /** Null for the gather. */
  task: TaskRecord | null;
  /** The outputs to upload when the attempt succeeds (object-storage outdir only). */
  localOut: string | null;
  /** Set once a gather is prepared: its cache key, and what uploads its outputs once it ended. */
  gather?: { cacheKey: string; finish: (result: AttemptResult) => Promise<AttemptResult> };
  /** Handed back to the queue (SIGTERM twice, end of its lifetime): not the task's failure. */
  returning: boolean;
  /** Claimed ahead and waiting for room; being staged in; handed to the launcher; ended, its report not yet committed. */
  phase: 'waiting' | 'starting' | 'running' | 'ended';
  /** Stop it as soon as it is started (asked while it was being staged in). */
  stopWhenStarted: boolean;
}

/**
 * While tasks end in less than this, a worker claims up to CLAIM_AHEAD times what it can run at
 * once, so that short tasks do not each wait for a round trip to the store; longer tasks are
 * claimed only as room frees, so that they spread over the workers.
 */
const SHORT_TASK_MS = 1000;
const CLAIM_AHEAD = 4;

/**
 * A pull worker: claims attempts that fit in what it has free from the shared store, runs them
 * on this machine through the local launcher, renews their leases while they run, reports each
 * result (applying the retry policy), and helps with the queue's duties. Any number of them, on
 * any machines that reach the store (and the workdir), may come and go at any time.
 */
export class Worker {
  readonly id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly backend: LocalBackend;
  private readonly duties: QueueDuties;
  private readonly startNotices: StartNotices;
  /** Timers' work still under way (a heartbeat retried through an outage of the store): not begun twice. */
  private readonly timersBusy = new Set<'heartbeat' | 'reap'>();
  private readonly held = new Map<number, Held>();
  private readonly templates = new Map<number, Template>();
  private readonly results: Array<{ launchId: number; result: AttemptResult }> = [];
  private readonly unsettled = new Set<number>();
  private readonly scratch: string;
  private nextLaunchId = 1;
  /** Claimed attempts waiting for room, in claim order. */
  private readonly waiting: number[] = [];
  /** What the attempts this worker holds ask for, and what those it has started ask for. */
  private readonly heldDemand = new ResourceTally();
  private readonly startedDemand = new ResourceTally();
  /** How long tasks took of late (a moving average), null until one ended. */
  private recentTaskMs: number | null = null;
  private stopping: 'no' | 'drain' | 'return' = 'no';
  private exit: WorkerExit = 'stopped';
  private wake: (() => void) | undefined;
  private failure: Error | undefined;

  constructor(private readonly options: WorkerOptions) {
    this.backend = new LocalBackend({ graceMs: options.graceMs });
    this.duties = new QueueDuties(options.store, options.alerts, { storage: options.storage, leaseMs: options.leaseMs });
    this.scratch = join(options.scratch, this.id);
    this.startNotices = new StartNotices((keys) => options.store.started(this.id, keys));
  }

  /**
   * First call: claim nothing more, finish what runs, then stop. Second call: hand what runs
   * back to the queue (terminated, retried elsewhere without spending its retry budget) and stop.
   */
  stop(): void {
    this.stopping = this.stopping === 'no' ? 'drain' : 'return';
    // Draining finishes what runs; what was claimed ahead and not started goes back at once.
    this.handBack(this.stopping === 'drain' ? 'waiting' : 'all');
    this.wake?.();
  }

  get holding(): number {
    return this.held.size;
  }

  async run(): Promise<WorkerExit> {
    const { store, leaseMs } = this.options;
    mkdirSync(this.scratch, { recursive: true });
    await store.registerWorker({
      id: this.id,
      host: hostname(),
      pid: process.pid,
      cpus: this.options.cpus,
      memory: this.options.memory,
      launchedBy: this.options.launchedBy,
    });
    await this.backend.start((launchId, result) => this.ended(launchId, result));
    const heartbeat = setInterval(() => this.onTimer('heartbeat', () => this.heartbeat()), Math.max(200, leaseMs / 3));
    const reaper = setInterval(() => this.onTimer('reap', () => this.duties.reapExpired()), Math.max(500, leaseMs / 2));
    const lifetime = this.options.lifetimeMs === null ? undefined : setTimeout(() => this.retire(), this.options.lifetimeMs);
    try {
      await this.loop();
    } finally {
      clearInterval(heartbeat);
      clearInterval(reaper);
      clearTimeout(lifetime);
      await this.backend.close();
      for (const runId of this.unsettled) await this.duties.settle(runId).catch(() => {});
      await store.retireWorker(this.id).catch(() => {});
      rmSync(this.scratch, { recursive: true, force: true });
    }
    return this.exit;
  }

  private async loop(): Promise<void> {
    const pollMs = this.options.pollMs ?? 500;
    let idleSince: number | null = null;
    let wait = pollMs;
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      await this.report();
      if (this.stopping !== 'no' && this.held.size === 0) return;
      let claimed = 0;
      if (this.stopping === 'no') claimed = await this.claim();
      if (claimed > 0 || this.held.size > 0) {
        idleSince = null;
        wait = pollMs;
      } else {
        // Settling a run may queue its gather: claim again before calling the queue empty.
        if (await this.settleTouchedRuns()) continue;
        idleSince ??= Date.now();
        // Attempts out under other workers' leases come back to the queue if those workers vanish.
        if (this.options.untilEmpty && !(await this.options.store.leasesOutstanding())) return this.finish('empty');
        if (this.options.maxIdleMs !== null && Date.now() - idleSince >= this.options.maxIdleMs) return this.finish('idle');
        wait = Math.min(wait * 2, pollMs * 8);
      }
      // With room left and work found, claim again at once; otherwise wait for a result or the poll.
      if (claimed > 0 && this.heldDemand.cpus < this.options.cpus * this.claimAhead() && this.stopping === 'no') continue;
      if (this.results.length > 0) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, claimed > 0 || this.held.size > 0 ? pollMs * 8 : wait);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private finish(exit: WorkerExit): void {
    this.exit = exit;
  }

  private claimAhead(): number {
    return this.recentTaskMs !== null && this.recentTaskMs < SHORT_TASK_MS ? CLAIM_AHEAD : 1;
  }

  private async claim(): Promise<number> {
    const { cpus, memory, layout } = this.options;
    const ahead = this.claimAhead();
    const room = cpus * ahead - this.heldDemand.cpus;
    if (room < 1) return 0;
    const claimed = await this.options.store.claim({
      workerId: this.id,
      cpus: room,
      memory: memory * ahead - this.heldDemand.memory,
      perTask: { cpus, memory },
      limit: room,
      leaseMs: this.options.leaseMs,
      folders: layout,
    });
    for (const attempt of claimed) await this.hold(attempt);
    this.startWaiting();
    return claimed.length;
  }

  private async hold(claimed: ClaimedAttempt): Promise<void> {
    const run = await this.duties.run(claimed.runId);
    const task = claimed.kind === 'task' ? claimed.task : null;
    const held: Held = {
      key: task
        ? { kind: 'task', runId: claimed.runId, index: task.index, attempt: claimed.attempt }
        : { kind: 'gather', runId: claimed.runId, attempt: claimed.attempt },
      run,
      site: attemptSite(this.options.storage, claimed.dir, this.scratch),
      cpus: task?.cpus ?? 1,
      memory: task?.memory ?? 0,
      task,
      localOut: null,
      returning: false,
      phase: 'waiting',
      stopWhenStarted: false,
    };
    const launchId = this.nextLaunchId++;
    this.held.set(launchId, held);
    this.waiting.push(launchId);
    this.heldDemand.add(held);
  }

  /** Start waiting attempts, in claim order, while they fit in what is free. */
  private startWaiting(): void {
    while (this.waiting.length > 0) {
      const held = this.held.get(this.waiting[0]!)!;
      if (!this.startedDemand.fits(held, { cpus: this.options.cpus, memory: this.options.memory })) return;
      const launchId = this.waiting.shift()!;
      held.phase = 'starting';
      this.startedDemand.add(held);
      void this.start(launchId, held);
    }
  }

  /** Stage an attempt in and hand it to the launcher; a staging failure is reported as `infra`. */
  private async start(launchId: number, held: Held): Promise<void> {
    let launch: AttemptLaunch;
    try {
      launch = held.task ? await this.prepareTask(launchId, held, held.task) : await this.prepareGatherLaunch(launchId, held);
    } catch (error) {
      return this.endUnstarted(launchId, 'infra', `staging in failed: ${(error as Error).message}`);
    }
    if (held.key.kind === 'task' && !held.stopWhenStarted) {
      try {
        await this.startNotices.note(held.key);
      } catch (error) {
        // The store is gone for good: the worker stops (through its loop) and this never starts.
        this.failure ??= error as Error;
        this.wake?.();
        return;
      }
    }
    if (held.stopWhenStarted) return this.endUnstarted(launchId, 'cancelled', 'stopped before it started');
    this.backend.submit([launch]);
    held.phase = 'running';
  }

  /** Report an attempt that never reached the launcher. */
  private endUnstarted(launchId: number, reason: 'cancelled' | 'infra', error: string): void {
    const now = Date.now();
    this.ended(launchId, { reason, exitCode: null, signal: null, startedAt: now, endedAt: now, peakMemory: null, cpuMs: 0, host: hostname(), error });
  }

  /**
   * An attempt ended: its room is free at once, so a task claimed ahead starts now rather than
   * after the report's round trip to the store; the attempt stays held until its report commits.
   */
  private ended(launchId: number, result: AttemptResult): void {
    const held = this.held.get(launchId);
    if (held && held.phase !== 'ended') {
      held.phase = 'ended';
      this.startedDemand.remove(held);
    }
    this.results.push({ launchId, result });
    this.startWaiting();
    this.wake?.();
  }

  /** Stop attempts this worker holds, wherever they are between claim and end. */
  private stopAttempts(launchIds: number[]): void {
    const running: number[] = [];
    for (const launchId of launchIds) {
      const held = this.held.get(launchId);
      if (!held) continue;
      if (held.phase === 'ended') continue;
      if (held.phase === 'running') running.push(launchId);
      else if (held.phase === 'starting') held.stopWhenStarted = true;
      else {
        // Never started: its room counts as used until its report releases it, like any other.
        this.waiting.splice(this.waiting.indexOf(launchId), 1);
        held.phase = 'running';
        this.startedDemand.add(held);
        this.endUnstarted(launchId, 'cancelled', 'stopped before it started');
      }
    }
    this.backend.cancel(running, { force: false });
  }

  private async prepareTask(launchId: number, held: Held, task: TaskRecord): Promise<AttemptLaunch> {
    const { run, site, key } = held;
    const spec = run.spec;
    const remoteOut = !this.options.storage.isLocal(spec.outdir);
    if (remoteOut) held.localOut = `${site.local}.out`;
    else mkdirSync(spec.outdir, { recursive: true });
    removeFolders(earlierStaging(spec.outdir, run.id, task.index, key.attempt));
    const vars = await stageIn(this.options.storage, task.vars, site);
    return taskLaunch(
      spec,
      this.template(run),
      { id: launchId, runId: run.id, task, attempt: key.attempt, vars },
      {
        attemptDir: site.local,
        stagingOut: remoteOut ? `${site.local}.staging` : stagingOut(spec.outdir, run.id, task.index, key.attempt),
        finalOut: held.localOut ?? finalOut(spec.outdir, task.name),
      },
    );
  }

  private async prepareGatherLaunch(launchId: number, held: Held): Promise<AttemptLaunch> {
    const step = await GatherStep.load(this.options.store, this.options.layout, this.options.storage, held.run);
    if (step === null) throw new Error(`run ${held.run.id} has no gather`);
    const prepared = await step.prepare(held.key.attempt, { attemptDir: held.site.local, manifest: join(`${held.site.local}.in`, 'manifest.json'), launchId });
    held.gather = { cacheKey: step.cacheKey, finish: prepared.finish };
    return prepared.launch;
  }

  private template(run: RunRecord): Template {
    let template = this.templates.get(run.id);
    if (!template) this.templates.set(run.id, (template = parseTemplate(run.spec.command)));
    return template;
  }

  /** Commit every result that arrived, in one transaction, after staging their outputs and logs out. */
  private async report(): Promise<void> {
    const arrived = this.results.splice(0);
    if (arrived.length === 0) return;
    const changes: ResultChange[] = [];
    const names = new Map<string, string>();
    const gathers: Array<{ held: Held; result: AttemptResult }> = [];
    await Promise.all(
      arrived.map(async ({ launchId, result }) => {
        const held = this.held.get(launchId);
        if (!held) return;
        if (held.task) {
          changes.push(await this.finishTask(held, held.task, result));
          names.set(`${held.key.runId}.${held.task.index}`, held.task.name);
        } else gathers.push({ held, result: await this.finishGather(held, result) });
      }),
    );
    if (changes.length > 0) {
      const { appliedResults } = await this.options.store.commit({ results: changes });
      this.duties.reported(appliedResults, (runId, index) => names.get(`${runId}.${index}`));
    }
    for (const { held, result } of gathers) {
      // Handed back, it waits for another worker; its inputs are all still there.
      const gatherState = held.returning ? 'pending' : result.reason === 'ok' ? 'succeeded' : 'failed';
      await this.options.store.endGather({
        runId: held.key.runId,
        attempt: held.key.attempt,
        result,
        gatherState,
        cacheKey: gatherState === 'succeeded' ? held.gather?.cacheKey : undefined,
      });
    }
    for (const { launchId, result } of arrived) {
      const held = this.held.get(launchId);
      if (!held) continue;
      this.held.delete(launchId);
      this.heldDemand.remove(held);
      this.unsettled.add(held.key.runId);
      if (result.reason === 'ok' && held.task) this.noteDuration(result.endedAt - result.startedAt);
      await clearSite(held.site);
    }
    this.startWaiting();
  }

  private noteDuration(ms: number): void {
    this.recentTaskMs = this.recentTaskMs === null ? ms : 0.8 * this.recentTaskMs + 0.2 * ms;
  }

  /** Stage out what a finished gather wrote and its logs. */
  private async finishGather(held: Held, result: AttemptResult): Promise<AttemptResult> {
    const outcome = held.gather ? await held.gather.finish(result) : result;
    await this.uploadLogs(held);
    return outcome;
  }

  /** Stage out what a finished task attempt left, then say what its task becomes. */
  private async finishTask(held: Held, task: TaskRecord, result: AttemptResult): Promise<ResultChange> {
    const staging = stagingOut(held.run.spec.outdir, held.run.id, task.index, held.key.attempt);
    let outcome = withDiskFullNote(result, { attemptDir: held.site.local, stagingOut: staging });
    try {
      if (result.reason === 'ok' && held.localOut !== null) {
        await commitToObjectStorage(this.options.storage, held.localOut, held.run.spec.outdir, task.name, {
          runId: held.key.runId,
          index: task.index,
          attempt: held.key.attempt,
        });
      }
    } catch (error) {
      outcome = { ...result, reason: 'infra', error: `staging out failed: ${(error as Error).message}` };
    }
    await this.uploadLogs(held);
    if (outcome.reason !== 'ok' && outcome.reason !== 'cancelled') {
      this.options.log(`run ${held.key.runId} task ${task.name} attempt ${held.key.attempt}: ${outcome.reason}${outcome.error ? ` (${outcome.error})` : ''}`);
    }
    return this.duties.decide(held.run, { task, attempt: held.key.attempt, result: outcome, interruption: held.returning ? 'handed-back' : 'none' });
  }

  private async uploadLogs(held: Held): Promise<void> {
    try {
      await stageOutLogs(this.options.storage, held.site);
    } catch (error) {
      this.options.log(`could not upload the logs of run ${held.key.runId} task ${held.task?.name ?? 'gather'}: ${(error as Error).message}`);
    }
  }

  private async heartbeat(): Promise<void> {
    const holding = [...this.held.values()].map((held) => held.key);
    const stop = await this.options.store.heartbeat(this.id, holding, this.options.leaseMs);
    if (stop.length === 0) return;
    const wanted = new Set(stop.map(keyText));
    this.stopAttempts([...this.held].filter(([, held]) => wanted.has(keyText(held.key))).map(([id]) => id));
  }

  /** End of the allocation's lifetime: hand everything back now, so nothing is cut off by the walltime. */
  private retire(): void {
    this.exit = 'lifetime';
    this.stopping = 'return';
    this.handBack('all');
    this.wake?.();
  }

  private handBack(which: 'waiting' | 'all'): void {
    const launchIds = which === 'all' ? [...this.held.keys()] : [...this.waiting];
    const unended = launchIds.filter((launchId) => this.held.get(launchId)!.phase !== 'ended');
    for (const launchId of unended) this.held.get(launchId)!.returning = true;
    this.stopAttempts(unended);
  }

  /**
   * Settle the runs this worker reported results of; true when one of them has its gather
   * waiting. Another process (a watching `fanout run`, another worker) may have queued it first,
   * just after this worker's last claim: the worker must still not call the queue empty.
   */
  private async settleTouchedRuns(): Promise<boolean> {
    let gatherWaiting = false;
    for (const runId of this.unsettled) {
      const settled = await this.duties.settle(runId);
      gatherWaiting ||= settled === 'gather-queued' || (settled === null && (await this.options.store.getRun(runId))?.gatherState === 'pending');
    }
    this.unsettled.clear();
    return gatherWaiting;
  }

  /** A timer's work, unless the last one is still under way (riding out an outage of the store). */
  private onTimer(what: 'heartbeat' | 'reap', work: () => Promise<unknown>): void {
    if (this.timersBusy.has(what)) return;
    this.timersBusy.add(what);
    this.background(work().finally(() => this.timersBusy.delete(what)));
  }

  /** Timers' work: a failure stops the worker (through the loop) instead of going unseen. */
  private background(work: Promise<unknown>): void {
    work.catch((error: unknown) => {
      this.failure ??= error instanceof Error ? error : new Error(String(error));
      this.wake?.();
    });
  }
}

function keyText(key: AttemptKey): string {
  return key.kind === 'task' ? `${key.runId}.${key.index}.${key.attempt}` : `${key.runId}.gather.${key.attempt}`;
}
