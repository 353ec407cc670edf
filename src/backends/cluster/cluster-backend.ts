import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join, relative } from 'node:path';
import { JobFileError, UserError } from '../../errors.js';
import type { Locate } from '../../job/field-location.js';
import type { AttemptResult } from '../../runner/launcher.js';
import { lostResult, readResultRecord, rewriteResultRecord, STDOUT_FILE, type ResultRecord } from '../../runner/result-record.js';
import type { ProcessIdentity } from '../../store/records.js';
import type { AttemptLaunch, Capacity, OrphanAttempt, PlanSample, PushBackend, ResultListener } from '../backend.js';
import { planArrays, type PlannedArray } from './array-plan.js';
import type { ResolvedClusterSettings } from './cluster-settings.js';
import { writeAttemptFiles, writeRunner } from './element-runner.js';
import { SubmitError, type SchedulerCommands } from './scheduler-commands.js';
import { elementKey, type ClusterFacts, type ElementRef, type ElementReport, type ElementState, type Scheduler } from './scheduler.js';
import { findTemplate, renderSubmissionScript, type ScriptTemplate } from './submission-script.js';
import { elementContainerLine } from '../../container/container-command.js';
import type { ShellWord } from '../../container/container-engines.js';

export interface ClusterBackendOptions {
  scheduler: Scheduler;
  commands: SchedulerCommands;
  settings: ResolvedClusterSettings;
  facts: ClusterFacts;
  /** The run's work folder on the shared filesystem: attempt folders, arrays, the runner. */
  runDir: string;
  /** Names the run's jobs in the queue: `fanout-<job>-<run>`. */
  jobName: string;
  graceMs: number;
}

/** How often result records are looked for; cheap, unlike asking the scheduler. */
const SCAN_MS = 500;
const MAX_POLL_MS = 60_000;
/** Polls an ended element may go without word from the scheduler (accounting lags) before its attempts count as lost. */
const PATIENCE_POLLS = 3;
const SUBMIT_TRIES = 3;
/** The longest a launch waits for others to share its submission while the queue is full. */
const BATCH_WAIT_MS = 5_000;

interface Attempt {
  id: number;
  dir: string;
  element: Element | null;
  reported: boolean;
  cancelled: boolean;
  /**
   * A record held until its element leaves the queue, because only the scheduler's account of the
   * element says whether it was the memory or time limit (see needsAccount).
   */
  held: ResultRecord | null;
}

interface Element {
  ref: ElementRef;
  arrayDir: string;
  attempts: Attempt[];
  /** What the last poll saw; `gone` once it left the queue. */
  seen: 'submitted' | ElementState | 'gone';
  pollsWithoutWord: number;
}

/** Where the journal says an attempt went: its array, line (element) and place on the line. */
interface Placement {
  jobId: string | null;
  arrayDir: string;
  index: number;
  position: number;
}

/**
 * Attempts as elements of array jobs on a batch scheduler. Launches that ask for the same
 * resources go in together as arrays (packed `pack` to an element, cut at the cluster's array
 * limit), at most `submitRate` submissions a second. Results come from the result records the
 * element runner writes on the shared filesystem; the scheduler is asked only which elements are
 * still queued (one call per poll, backing off while nothing changes) and, for elements that left
 * the queue without records, how they ended (OOM, timeout, node failure, cancelled outside).
 * Jobs outlive the coordinator; a later one adopts them through the arrays' journal.
 */
export class ClusterBackend implements PushBackend {
  readonly name: string;
  readonly dispatch = 'push';
  /** The node-side runner reads and writes folders. */
  readonly objectStorage = false;
  private onResult: ResultListener = () => {};
  private readonly attempts = new Map<number, Attempt>();
  private readonly elements = new Map<string, Element>();
  /** Adopted attempts of arrays whose job id was never written, by array folder. */
  private readonly unresolved = new Map<string, Array<{ attempt: Attempt; placement: Placement }>>();
  private waiting: AttemptLaunch[] = [];
  private waitingSince = 0;
  private readonly template: ScriptTemplate;
  private runner: string | null = null;
  private closed = false;
  private loopDone: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  private pollMs: number;
  private nextPollAt = 0;
  private nextSubmitAt = 0;

  constructor(private readonly options: ClusterBackendOptions) {
    this.name = options.scheduler.name;
    this.template = findTemplate(options.scheduler.name, options.settings.templateDirs);
    this.pollMs = options.settings.pollMs;
  }

  private get pack(): number {
    return this.options.settings.pack;
  }

  /** Arrays are cut at this many elements. */
  private get maxArraySize(): number {
    const { settings, facts } = this.options;
    return Math.min(facts.maxArraySize, settings.maxArraySize ?? Number.POSITIVE_INFINITY);
  }

  capacity(): Capacity {
    const { largestNode } = this.options.facts;
    return { cpus: largestNode.cpus, memory: largestNode.memory, shared: false };
  }

  /** The queue holds at most `queueSize` elements of `pack` attempts each. */
  defaultConcurrency(): number {
    return this.options.settings.queueSize * this.options.settings.pack;
  }

  async start(onResult: ResultListener): Promise<ProcessIdentity | null> {
    this.onResult = onResult;
    mkdirSync(join(this.options.runDir, 'arrays'), { recursive: true });
    this.options.commands.logFile = join(this.options.runDir, 'scheduler-commands.log');
    this.loopDone = this.loop();
    // The scheduler supervises the jobs; there is no process of ours to record.
    return null;
  }

  /** The scheduler supervises the jobs; there is no process of ours to record. */
  supervisor(): null {
    return null;
  }

  submit(launches: AttemptLaunch[]): void {
    for (const launch of launches) {
      writeAttemptFiles(launch, this.options.graceMs);
      this.attempts.set(launch.id, { id: launch.id, dir: launch.attemptDir, element: null, reported: false, cancelled: false, held: null });
    }
    if (this.waiting.length === 0) this.waitingSince = Date.now();
    this.waiting.push(...launches);
    this.wake?.();
  }

  cancel(ids: number[], options: { force: boolean }): void {
    const elements = new Map<string, Element>();
    for (const id of ids) {
      const attempt = this.attempts.get(id);
      if (!attempt || attempt.reported) continue;
      attempt.cancelled = true;
      if (attempt.element) elements.set(elementKey(attempt.element.ref), attempt.element);
    }
    const unsent = this.waiting.filter((launch) => this.attempts.get(launch.id)?.cancelled);
    this.waiting = this.waiting.filter((launch) => !this.attempts.get(launch.id)?.cancelled);
    for (const launch of unsent) this.report(this.attempts.get(launch.id)!, cancelledResult('cancelled before it was submitted'));
    if (elements.size === 0) return;
    this.options.scheduler.cancel([...elements.values()].map((element) => element.ref)).catch(() => {
      // The next poll shows what is still queued; a failed scancel/qdel leaves those to end.
    });
    if (options.force) {
      for (const element of elements.values()) {
        for (const attempt of element.attempts) if (!attempt.reported) this.report(attempt, cancelledResult('cancelled'));
      }
    }
    this.nextPollAt = 0;
    this.pollMs = this.options.settings.pollMs;
    this.wake?.();
  }

  adopt(orphans: OrphanAttempt[], _supervisor: ProcessIdentity | null): void {
    const journal = this.readJournal();
    for (const orphan of orphans) {
      const attempt: Attempt = { id: orphan.id, dir: orphan.attemptDir, element: null, reported: false, cancelled: false, held: null };
      this.attempts.set(orphan.id, attempt);
      const record = readResultRecord(orphan.attemptDir);
      const placed = journal.get(relative(this.options.runDir, orphan.attemptDir));
      if (record && !(placed && this.needsAccount(attempt, record))) {
        this.report(attempt, record);
        continue;
      }
      attempt.held = record;
      if (!placed) {
        // Never handed to the scheduler (the coordinator died before the submission).
        this.report(attempt, lostResult('it was never submitted', { notStarted: true }));
        continue;
      }
      if (placed.jobId === null) {
        // The loop asks the scheduler for the array's job by its name.
        this.unresolved.set(placed.arrayDir, [...(this.unresolved.get(placed.arrayDir) ?? []), { attempt, placement: placed }]);
        continue;
      }
      this.place(attempt, placed.jobId, placed);
    }
    for (const element of this.elements.values()) element.attempts = element.attempts.filter(Boolean);
    this.nextPollAt = 0;
  }

  private place(attempt: Attempt, jobId: string, placement: Placement): void {
    const ref = { jobId, element: this.options.scheduler.firstElement + placement.index };
    const key = elementKey(ref);
    let element = this.elements.get(key);
    if (!element) {
      element = { ref, arrayDir: placement.arrayDir, attempts: [], seen: 'submitted', pollsWithoutWord: 0 };
      this.elements.set(key, element);
    }
    element.attempts[placement.position] = attempt;
    attempt.element = element;
  }

  /**
   * Adopted arrays without a job id: the coordinator died between the submission and writing
   * it. The job is found by its name and adopted; an array the scheduler never saw was never
   * submitted, and its attempts go back to the queue.
   */
  private async resolveUnrecorded(): Promise<void> {
    for (const [arrayDir, adopted] of this.unresolved) {
      const jobId = await this.options.scheduler.findJob(this.arrayJobName(arrayDir));
      this.unresolved.delete(arrayDir);
      if (jobId === null) {
        for (const { attempt } of adopted) this.report(attempt, lostResult('it was never submitted', { notStarted: true }));
        continue;
      }
      writeFileSync(join(arrayDir, 'job'), `${jobId}\n`);
      for (const { attempt, placement } of adopted) this.place(attempt, jobId, placement);
      for (const element of this.elements.values()) element.attempts = element.attempts.filter(Boolean);
    }
    this.nextPollAt = 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.loopDone;
  }

  /** The submission script of the first array a run would submit: what `fanout render --backend` prints. */
  submissionScript(sample: PlanSample): string {
    const array = this.planArrays(sample.launches(this.sampleSize()))[0];
    if (!array) return '';
    const arrayDir = join(this.options.runDir, 'arrays', '1');
    return this.script(array, arrayDir, join(this.options.runDir, 'fanout-element.sh'));
  }

  /** Refuse what the scheduler would refuse at submission: it checks the first array without queueing it. */
  async preflight(sample: PlanSample, locate: Locate): Promise<void> {
    const asked = sample.spec.cluster?.maxArraySize;
    const allowed = this.options.facts.maxArraySize;
    if (asked !== undefined && asked > allowed) {
      throw new JobFileError(
        locate('cluster.maxArraySize'),
        `asks for arrays of ${asked} elements but the cluster allows at most ${allowed}`,
        `set it to at most ${allowed}, or remove it`,
      );
    }
    const complaint = await this.check(sample.launches(this.sampleSize()), sample.scratchDir);
    if (complaint !== null) {
      throw new UserError(
        `${this.name} refuses this job's first array: ${complaint}`,
        `change the job's resources or its ${this.name} settings (see \`fanout render ${sample.spec.file} --backend ${this.name}\`)`,
      );
    }
  }

  /** How many launches stand for the first array: as many as one array and the queue take. */
  private sampleSize(): number {
    return Math.min(this.defaultConcurrency(), this.maxArraySize * this.pack);
  }

  /** Ask the scheduler to check the first array without queueing it: its complaint, or null. */
  private async check(launches: AttemptLaunch[], scratchDir: string): Promise<string | null> {
    const array = this.planArrays(launches)[0];
    if (!array) return null;
    mkdirSync(scratchDir, { recursive: true });
    const path = join(scratchDir, `check-${process.pid}.sh`);
    const firstArrayName = this.arrayJobName(join(this.options.runDir, 'arrays', '1'));
    writeFileSync(path, this.script(array, scratchDir, join(scratchDir, 'fanout-element.sh'), firstArrayName));
    try {
      return await this.options.scheduler.check(path);
    } finally {
      rmSync(path, { force: true });
    }
  }

  private planArrays(launches: AttemptLaunch[]): PlannedArray[] {
    return planArrays(launches, { pack: this.options.settings.pack, maxArraySize: this.maxArraySize });
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      try {
        const now = Date.now();
        if (this.unresolved.size > 0) await this.resolveUnrecorded();
        if (this.readyToSubmit(now)) await this.submitWaiting();
        this.scanRecords();
        if (this.elements.size > 0 && Date.now() >= this.nextPollAt) await this.poll();
      } catch (error) {
        // A scheduler command that fails (controller down, timeout) is tried again next round.
        process.emitWarning(`fanout: ${this.name}: ${(error as Error).message}`);
        this.nextPollAt = Date.now() + this.pollMs;
      }
      await new Promise<void>((resolve) => {
        const untilSubmit = Math.max(this.nextSubmitAt, this.readyToSubmit(Date.now()) ? 0 : this.waitingSince + BATCH_WAIT_MS) - Date.now();
        const timer = setTimeout(resolve, this.waiting.length > 0 ? Math.max(0, Math.min(untilSubmit, SCAN_MS)) : SCAN_MS);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /**
   * Whether to submit what waits now. A batch of a tenth of the queue is worth a submission; less
   * waits up to BATCH_WAIT_MS for company while the queue still holds a batch of its own, so a
   * steady trickle of finished elements does not become one sbatch each.
   */
  private readyToSubmit(now: number): boolean {
    if (this.waiting.length === 0 || now < this.nextSubmitAt) return false;
    const batchElements = Math.max(1, Math.ceil(this.options.settings.queueSize / 10));
    const waitingElements = Math.ceil(this.waiting.length / this.options.settings.pack);
    return waitingElements >= batchElements || this.elements.size < batchElements || now >= this.waitingSince + BATCH_WAIT_MS;
  }

  private async submitWaiting(): Promise<void> {
    const launches = this.waiting;
    this.waiting = [];
    const arrays = this.planArrays(launches);
    const gap = 1000 / this.options.settings.submitRate;
    for (const array of arrays) {
      const wait = this.nextSubmitAt - Date.now();
      if (wait > 0) await sleep(wait);
      this.nextSubmitAt = Date.now() + gap;
      await this.submitArray(array);
    }
    this.nextPollAt = Math.min(this.nextPollAt, Date.now() + this.options.settings.pollMs);
  }

  private async submitArray(array: PlannedArray): Promise<void> {
    this.runner ??= writeRunner(this.options.runDir);
    const arrayDir = this.claimArrayDir();
    const lines = array.elements.map((element) => element.map((launch) => relative(this.options.runDir, launch.attemptDir)).join(' '));
    writeFileSync(join(arrayDir, 'elements'), `${lines.join('\n')}\n`);
    const scriptPath = join(arrayDir, 'script.sh');
    writeFileSync(scriptPath, this.script(array, arrayDir, this.runner));
    let jobId: string | null = null;
    let complaint = '';
    for (let tries = 1; tries <= SUBMIT_TRIES && jobId === null; tries++) {
      try {
        jobId = await this.options.scheduler.submit(scriptPath);
      } catch (error) {
        complaint = (error as Error).message;
        if (!(error instanceof SubmitError) || tries === SUBMIT_TRIES) break;
        await sleep(2000 * tries);
      }
    }
    if (jobId === null) {
      const error = `${this.options.scheduler.submitCommand} refused the array (${scriptPath}): ${complaint}`;
      for (const launch of array.elements.flat()) this.report(this.attempts.get(launch.id)!, infraResult(error));
      return;
    }
    writeFileSync(join(arrayDir, 'job'), `${jobId}\n`);
    const cancelled: ElementRef[] = [];
    array.elements.forEach((launches, position) => {
      const ref = { jobId, element: this.options.scheduler.firstElement + position };
      const element: Element = { ref, arrayDir, attempts: [], seen: 'submitted', pollsWithoutWord: 0 };
      for (const launch of launches) {
        const attempt = this.attempts.get(launch.id)!;
        attempt.element = element;
        element.attempts.push(attempt);
      }
      this.elements.set(elementKey(ref), element);
      if (element.attempts.some((attempt) => attempt.cancelled)) cancelled.push(ref);
    });
    // Cancelled while the submission was on its way.
    if (cancelled.length > 0) await this.options.scheduler.cancel(cancelled);
  }

  /**
   * Each array's job name is its own (run, array number, and a tag of the run's folder, so runs of
   * two homes never share one): a coordinator that died before writing an array's job id finds
   * the job by it instead of submitting the array again.
   */
  private arrayJobName(arrayDir: string): string {
    const tag = createHash('sha256').update(this.options.runDir).digest('hex').slice(0, 6);
    return `${this.options.jobName}-a${basename(arrayDir)}-${tag}`;
  }

  private script(array: PlannedArray, arrayDir: string, runner: string, jobName = this.arrayJobName(arrayDir)): string {
    return renderSubmissionScript({
      scheduler: this.options.scheduler,
      template: this.template,
      array: {
        jobName,
        elements: array.elements.length,
        // Relative to the array's folder, where the script is submitted from: paths with spaces
        // cannot be written in a directive.
        elementLogPattern: 'element-%ELEMENT%.log',
        resources: array.resources,
      },
      runner,
      runDir: this.options.runDir,
      elementList: join(arrayDir, 'elements'),
      enclose: elementContainer(array, this.options.runDir),
    });
  }

  private claimArrayDir(): string {
    const arrays = join(this.options.runDir, 'arrays');
    for (let seq = readdirSync(arrays).length + 1; ; seq++) {
      const dir = join(arrays, String(seq));
      try {
        mkdirSync(dir);
        return dir;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
  }

  /**
   * Every submitted attempt's place, from the arrays' `elements` and `job` files; `jobId` is null
   * for an array whose `job` file was never written (submitted or not: findJob says).
   */
  private readJournal(): Map<string, Placement> {
    const placed = new Map<string, Placement>();
    const arrays = join(this.options.runDir, 'arrays');
    let entries: string[] = [];
    try {
      entries = readdirSync(arrays);
    } catch {
      return placed;
    }
    for (const entry of entries) {
      const arrayDir = join(arrays, entry);
      let lines: string[];
      try {
        lines = readFileSync(join(arrayDir, 'elements'), 'utf8').split('\n');
      } catch {
        continue;
      }
      let jobId: string | null = null;
      try {
        jobId = readFileSync(join(arrayDir, 'job'), 'utf8').trim() || null;
      } catch {
        // Not written: the coordinator died at or before the submission.
      }
      lines.forEach((line, index) => {
        line.split(' ').forEach((rel, position) => {
          if (rel) placed.set(rel, { jobId, arrayDir, index, position });
        });
      });
    }
    return placed;
  }

  private scanRecords(): void {
    for (const element of this.elements.values()) {
      // Only elements the last poll saw running or gone can have written records since: looking
      // in every queued element's folders each round would load NFS/Lustre metadata servers.
      if (element.seen !== 'running' && element.seen !== 'gone') continue;
      for (const attempt of element.attempts) {
        if (attempt.reported || attempt.held) continue;
        const record = readResultRecord(attempt.dir);
        if (record && this.needsAccount(attempt, record)) attempt.held = record;
        else if (record) this.report(attempt, record);
      }
    }
    this.dropFinishedElements();
  }

  /**
   * Whether a record waits for the scheduler's account of its element: a command killed by
   * SIGKILL (the OOM killer of cgroups and the time limit kill that way), and, where the memory
   * limit fails allocations instead (Grid Engine's h_vmem), a command that failed.
   */
  private needsAccount(attempt: Attempt, record: ResultRecord): boolean {
    if (attempt.cancelled) return false;
    if (record.signal === 'SIGKILL') return true;
    return this.options.scheduler.memoryLimitFailsAllocations && record.reason === 'exit';
  }

  private dropFinishedElements(): void {
    for (const [key, element] of this.elements) if (element.attempts.every((attempt) => attempt.reported)) this.elements.delete(key);
  }

  private async poll(): Promise<void> {
    const jobIds = [...new Set([...this.elements.values()].map((element) => element.ref.jobId))];
    const states = await this.options.scheduler.queued(jobIds);
    let changed = false;
    const gone: Element[] = [];
    const inError: Element[] = [];
    for (const element of this.elements.values()) {
      const state = states.get(elementKey(element.ref)) ?? 'gone';
      if (state !== element.seen) changed = true;
      element.seen = state;
      if (state === 'gone') gone.push(element);
      if (state === 'error') inError.push(element);
    }
    if (inError.length > 0) await this.failInError(inError);
    if (gone.length > 0) {
      // A record written just before the element left the queue is read before asking why.
      this.scanRecords();
      const unexplained = gone.filter((element) => element.attempts.some((attempt) => !attempt.reported));
      if (unexplained.length > 0) {
        const reports = await this.options.scheduler.ended(unexplained.map((element) => element.ref));
        this.scanRecords();
        for (const element of unexplained) this.explain(element, reports.get(elementKey(element.ref)));
        this.dropFinishedElements();
      }
    }
    this.pollMs = changed ? this.options.settings.pollMs : Math.min(this.pollMs * 2, MAX_POLL_MS);
    this.nextPollAt = Date.now() + this.pollMs;
  }

  /**
   * Elements the scheduler holds in an error state (Grid Engine's Eqw: it could not start them,
   * e.g. an unwritable log path or a missing working folder) would wait for a person forever.
   * They are deleted and their attempts end `infra` with the scheduler's words, so the run's
   * retry rules decide whether to submit them again.
   */
  private async failInError(elements: Element[]): Promise<void> {
    const reasons = new Map<string, string>();
    for (const jobId of new Set(elements.map((element) => element.ref.jobId))) {
      const byElement = (await this.options.scheduler.errorReasons?.(jobId)) ?? new Map<number, string>();
      for (const [element, reason] of byElement) reasons.set(elementKey({ jobId, element }), reason);
    }
    await this.options.scheduler.cancel(elements.map((element) => element.ref));
    for (const element of elements) {
      const why = reasons.get(elementKey(element.ref)) ?? 'no reason given';
      const error = `${this.name} could not start its array element ${elementKey(element.ref)} and held it in an error state (${why}); fanout deleted it`;
      for (const attempt of element.attempts) if (!attempt.reported) this.report(attempt, attempt.cancelled ? cancelledResult('cancelled') : infraResult(error));
    }
    this.dropFinishedElements();
  }

  /**
   * An element left the queue with attempts that have no record. The one with a log was running
   * when it ended and takes the scheduler's reason; the ones after it never started.
   */
  private explain(element: Element, report: ElementReport | undefined): void {
    const everyCancelled = element.attempts.every((attempt) => attempt.reported || attempt.cancelled);
    const onlyHeld = element.attempts.every((attempt) => attempt.reported || attempt.held);
    const silent = !report || report.end.state === 'unknown' || (report.end.state === 'completed' && !onlyHeld);
    if (silent && !everyCancelled && ++element.pollsWithoutWord < PATIENCE_POLLS) {
      this.nextPollAt = 0;
      return;
    }
    const log = join(element.arrayDir, `element-${element.ref.element}.log`);
    const said = report ? report.detail : 'the scheduler no longer knows how it ended';
    // Without cgroups a scheduler kills an element over its memory and says so only in its log.
    const oomLogged = report?.end.state !== 'oom' && this.options.scheduler.oomMessage.test(readTail(log));
    const end = oomLogged ? 'oom' : report?.end.state;
    const alone = element.attempts.length === 1;
    for (const attempt of element.attempts) {
      if (attempt.reported) continue;
      if (attempt.held) {
        const { held } = attempt;
        const failedAtLimit = held.reason === 'exit' && report?.memoryLimitReached === true;
        const reason = end === 'oom' || end === 'timeout' ? end : failedAtLimit ? 'oom' : held.reason;
        // The element's accounting is the attempt's own only when it ran alone in it.
        const peakMemory = held.peakMemory ?? (alone ? (report?.usage?.peakMemory ?? null) : null);
        const decided = { ...held, reason, peakMemory };
        // The record on disk says what the store will: a later reader finds the same reason.
        if (reason !== held.reason || peakMemory !== held.peakMemory) rewriteRecord(attempt.dir, decided);
        this.report(attempt, decided);
        continue;
      }
      if (attempt.cancelled) {
        this.report(attempt, cancelledResult('cancelled'));
        continue;
      }
      const started = existsSync(join(attempt.dir, STDOUT_FILE));
      if (!started) {
        this.report(attempt, lostResult(`its array element ended before it started (${said})`, { notStarted: true }));
        continue;
      }
      const usage = { peakMemory: alone ? (report?.usage?.peakMemory ?? null) : null, cpuMs: report?.usage?.cpuMs ?? 0 };
      if (end === 'oom' || end === 'timeout') {
        const { error: _none, ...killed } = lostResult('');
        this.report(attempt, { ...killed, ...usage, reason: end });
        continue;
      }
      const why =
        end === 'cancelled'
          ? `cancelled outside fanout (${said})`
          : end === 'node-failure'
            ? `the scheduler failed it: ${said}`
            : `it ended without a result record (${said}); see ${log}`;
      this.report(attempt, { ...lostResult(why), ...usage });
    }
  }

  private report(attempt: Attempt, result: AttemptResult): void {
    if (attempt.reported) return;
    attempt.reported = true;
    this.attempts.delete(attempt.id);
    this.onResult(attempt.id, result);
  }
}

function rewriteRecord(attemptDir: string, record: ResultRecord): void {
  try {
    rewriteResultRecord(attemptDir, record);
  } catch (error) {
    // The store still gets the decided result; only the copy on disk stays the runner's.
    process.emitWarning(`fanout: could not update the result record in ${attemptDir}: ${(error as Error).message}`);
  }
}

/** The end of an element's scheduler log, where schedulers leave their last words. */
function readTail(path: string): string {
  try {
    const text = readFileSync(path, 'utf8');
    return text.slice(-16_384);
  } catch {
    return '';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function cancelledResult(error: string): AttemptResult {
  return { ...lostResult(error), reason: 'cancelled' };
}

function infraResult(error: string): AttemptResult {
  return { ...lostResult(error), reason: 'infra' };
}

/**
 * With `container.per: element`, the whole element runs in one container: the runner, then each
 * of its attempts' commands, paying the container start once per element.
 */
function elementContainer(array: PlannedArray, runDir: string): ((argv: [string, ...ShellWord[]]) => string) | undefined {
  const shared = array.elements.flat().flatMap((launch) => (launch.sharedContainer ? [launch.sharedContainer] : []));
  if (shared.length === 0) return undefined;
  // The runner commits each attempt's output itself: the folders outputs move into come along.
  const outputFolders = array.elements.flat().flatMap((launch) => (launch.finalOut ? [dirname(launch.finalOut)] : []));
  return (argv) => elementContainerLine(shared, [runDir, ...new Set(outputFolders)], argv);
}
