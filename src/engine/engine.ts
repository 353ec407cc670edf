import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { AttemptLaunch, Backend } from '../backends/backend.js';
import { ClusterBackend } from '../backends/cluster/cluster-backend.js';
import { openBackend } from '../backends/open-backend.js';
import type { ClusterFacts } from '../backends/cluster/scheduler.js';
import { JobFileError, UserError } from '../errors.js';
import type { BackendName } from '../job/job-schema.js';
import type { JobSpec } from '../job/job-spec.js';
import type { AttemptResult } from '../runner/launcher.js';
import { lostResult } from '../runner/result-record.js';
import { loadJob, type JobSource, type Locate } from '../job/load-job-file.js';
import { parseTemplate } from '../job/template.js';
import { openStore } from '../store/open-store.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { resolveLocation } from '../job/resolve-location.js';
import { checkLocations, stageChunkFiles } from './run-locations.js';
import { committedTasks } from './committed-outputs.js';
import { watchQueuedRun } from './queued-run.js';
import { GATHER_INDEX, type AttemptRecord, type ProcessIdentity, type RunRecord, type RunState, type Store, type TaskCounts, type TaskRecord } from '../store/store.js';
import { Coordinator, type Progress } from './coordinator.js';
import { GATHER_ATTEMPT_ID, runGather, type GatherOutcome } from './gather.js';
import { HomeLayout, stagingOut, type RunPlace } from './home-layout.js';
import { newTasks, planJob, type Capacity, type PlannedJob } from './plan-job.js';
import { currentProcess, isAlive } from './process-identity.js';
import { ALERT_WAIT_MS, Alerts } from '../notify/alerts.js';

export interface EngineOptions {
  /** The fanout home (`.fanout/`): store, attempt folders, chunk files. */
  home: string;
  /** Hand fanout less of this machine than it has. */
  limits?: Partial<Pick<Capacity, 'cpus' | 'memoryBytes'>>;
  /** Between terminate and kill when an attempt is stopped (default 10 s). */
  graceMs?: number;
  /** A postgres:// URL; default: SQLite in the home. */
  store?: string;
  /** How long `close` waits for alerts still being delivered (default ALERT_WAIT_MS). */
  alertWaitMs?: number;
}

export interface RunOutcome {
  run: RunRecord;
  counts: TaskCounts;
  gather: GatherOutcome | null;
}

/** A run being driven by this process. */
export interface RunHandle {
  readonly run: RunRecord;
  progress(): Progress;
  onProgress(listener: (progress: Progress) => void): void;
  /**
   * What Ctrl-C does: `stops` the run (first call: stop launching and terminate what runs;
   * second: kill it now), or `detaches` from a run that goes on without this process.
   */
  readonly interrupt: 'stops' | 'detaches';
  stop(): void;
  readonly done: Promise<RunOutcome>;
}

/** What the command line may change about a job file without editing it. */
export interface PlanOptions {
  set?: Record<string, string>;
  /** Overrides the job file's `backend:`. */
  backend?: BackendName;
  /** Overrides the job file's `workdir:`. */
  workdir?: string;
}

export interface StartOptions extends PlanOptions {
  concurrency?: number;
  /** Ignore the cache: run every task again. */
  fresh?: boolean;
}

const DEFAULT_GRACE_MS = 10_000;

/** Pull workers come in every size: a task is refused only if no worker could ever take it. */
const ANY_WORKER: Capacity = { cpus: Number.MAX_SAFE_INTEGER, memoryBytes: Number.MAX_SAFE_INTEGER, shared: false };

/**
 * @internal Not part of the published types: the TypeScript API is `Fanout` (src/index.ts).
 *
 * The one place that knows how a run goes: plan, decide between a new run and a resume, claim
 * it, recover what a dead coordinator left, drive the tasks, gather. The CLI (and later the API
 * and the dashboard) are thin faces over it.
 */
export class Engine {
  private readonly me: ProcessIdentity = currentProcess();
  /** What cluster schedulers said about their clusters during this engine's life. */
  private readonly clusterFacts = new Map<string, ClusterFacts>();

  /** Alerts of the runs this engine drives or settles; `close` waits for their deliveries. */
  readonly alerts: Alerts;

  private constructor(
    private readonly options: EngineOptions,
    readonly store: Store,
    readonly layout: HomeLayout,
  ) {
    this.alerts = new Alerts({ layout });
  }

  static async open(options: EngineOptions): Promise<Engine> {
    const home = resolve(options.home);
    const store = await openStore(options.store, home);
    return new Engine(options, store, new HomeLayout(home, store.id));
  }

  /**
   * Load and plan a job (a job file, or an object from the API) without running it: every bad
   * input is refused here, including what a cluster's scheduler would refuse (it is asked to
   * check the first array without queueing it).
   */
  async plan(source: JobSource, options: PlanOptions = {}): Promise<PlannedJob> {
    const loaded = loadJob(source, { set: options.set });
    const { locate } = loaded;
    const spec: JobSpec = {
      ...loaded.spec,
      backend: options.backend ?? loaded.spec.backend,
      workdir: options.workdir === undefined ? loaded.spec.workdir : resolveLocation(process.cwd(), options.workdir),
    };
    await checkLocations(spec, locate, { sharedStore: !(this.store instanceof SqliteStore) });
    if (spec.backend === 'workers') return planJob(spec, { locate, chunkDir: this.layout.chunkDir, capacity: ANY_WORKER });
    const backend = await this.openBackend(spec, { id: 0, spec }, 'check');
    const planned = await planJob(spec, { locate, chunkDir: this.layout.chunkDir, capacity: backend.capacity() });
    if (backend instanceof ClusterBackend) await this.checkWithScheduler(backend, planned, locate);
    return planned;
  }

  /** The submission script the first array of a job would have: `fanout render --backend`. */
  async submissionScript(planned: PlannedJob): Promise<string> {
    const spec = planned.spec;
    const backend = await this.openBackend(spec, { id: ((await this.store.listRuns({ limit: 1 }))[0]?.id ?? 0) + 1, spec });
    if (!(backend instanceof ClusterBackend)) throw new UserError(`the ${backend.name} backend has no submission script`, 'pass --backend slurm or --backend sge');
    return backend.renderFirstArray(this.sampleLaunches(planned, backend, { id: 0, spec }));
  }

  /**
   * Run a job (a job file, or an object from the API). An interrupted run of the same job with
   * the same plan resumes in place; otherwise a new run starts, skipping tasks whose cache key
   * matches done work.
   */
  async start(source: JobSource, options: StartOptions = {}): Promise<RunHandle> {
    const planned = await this.plan(source, options);
    const job = planned.spec.name;
    const latest = (await this.store.listRuns({ job, limit: 1 }))[0];
    if (latest?.state === 'running' && latest.backend === 'workers') {
      if (!options.fresh && latest.planKey === planned.planKey) return watchQueuedRun(this.store, latest, this.alerts);
      throw new UserError(`job ${job} has a run (${latest.id}) on the workers backend that is still going, with another plan`, `wait for it, or stop it with \`fanout cancel ${latest.id}\``);
    }
    if (latest?.state === 'running') {
      await this.claim(latest);
      if (!options.fresh && latest.planKey === planned.planKey) return this.drive(latest, options.concurrency);
      // The job changed since that run was cut off: settle it (adopting what finished) and start anew.
      await (await this.drive(latest, undefined, { stopAtOnce: true })).done;
    }
    const skipped = options.fresh ? new Set<number>() : await this.doneTasks(planned);
    const queued = planned.spec.backend === 'workers';
    let tasks = newTasks(planned, skipped);
    if (queued) tasks = await stageChunkFiles(tasks, this.layout.chunkDir, planned.spec.workdir);
    const created = await this.store.createRun(
      {
        job,
        jobFile: planned.spec.file,
        spec: planned.spec,
        backend: planned.spec.backend ?? 'local',
        planKey: planned.planKey,
        tasks,
        coordinator: queued ? null : this.me,
      },
      isAlive,
    );
    if ('heldBy' in created) throw alreadyRunning(job, created.heldBy);
    return queued ? watchQueuedRun(this.store, created.run, this.alerts) : this.drive(created.run, options.concurrency);
  }

  /** Drive an earlier run again: requeue its failed (and, unless `failedOnly`, cancelled) tasks. */
  async retry(run: RunRecord, options: { failedOnly: boolean; concurrency?: number }): Promise<RunHandle> {
    const queued = run.backend === 'workers';
    if (!queued) await this.claim(run);
    const states = options.failedOnly ? ['failed'] : ['failed', 'cancelled'];
    const requeued = (await this.store.listTasks(run.id))
      .filter((task) => states.includes(task.state))
      .map((task) => ({ runId: run.id, index: task.index, state: 'pending' as const, resetRetries: true }));
    await this.store.commit({ taskStates: requeued, run: { id: run.id, state: 'running', endedAt: null, gatherState: null } });
    const reread = (await this.store.getRun(run.id))!;
    return queued ? watchQueuedRun(this.store, reread, this.alerts) : this.drive(reread, options.concurrency);
  }

  /**
   * Go on with a run that is still `running` after the process driving it went away: drive it
   * here (adopting what finished meanwhile), or, on the workers backend, watch it.
   */
  async resume(run: RunRecord): Promise<RunHandle> {
    if (run.backend === 'workers') return watchQueuedRun(this.store, run, this.alerts);
    await this.claim(run);
    return this.drive(run);
  }

  /**
   * The attempts behind a task's outcome: its own, or for a task skipped as done, those of the
   * earlier attempt whose work it reused (up to and including it).
   */
  async attemptsBehind(runId: number, task: TaskRecord): Promise<AttemptRecord[]> {
    if (task.state !== 'skipped') return this.store.attempts(runId, task.index);
    const origin = (await this.store.lookupCache([task.cacheKey])).get(task.cacheKey);
    return origin ? (await this.store.attempts(origin.runId, origin.index)).filter((a) => a.attempt <= origin.attempt) : [];
  }

  /** Stop a run: through its live coordinator, or by settling it here when none is left. */
  async cancel(run: RunRecord): Promise<'signalled' | 'settled' | 'not-running'> {
    if (run.state !== 'running') return 'not-running';
    if (run.backend === 'workers') {
      // Workers see the run cancelled at their next heartbeat and stop its attempts.
      const pending = (await this.store.listTasks(run.id, { state: 'pending' })).map((task) => ({ runId: run.id, index: task.index, state: 'cancelled' as const }));
      await this.store.commit({ taskStates: pending, run: { id: run.id, state: 'cancelled', endedAt: Date.now() } });
      return 'settled';
    }
    if (run.coordinator && isAlive(run.coordinator) && run.coordinator.pid !== process.pid) {
      process.kill(run.coordinator.pid, 'SIGTERM');
      return 'signalled';
    }
    await this.claim(run);
    await (await this.drive(run, undefined, { stopAtOnce: true })).done;
    return 'settled';
  }

  /** Refuse a gather that cannot run: a task has not succeeded, or the job has none. */
  async checkGather(run: RunRecord): Promise<void> {
    const counts = await this.store.counts(run.id);
    const unfinished = counts.pending + counts.running + counts.failed + counts.cancelled;
    if (unfinished > 0) {
      throw new UserError(`run ${run.id} has ${unfinished} task(s) that have not succeeded`, `run \`fanout retry ${run.id}\` first`);
    }
    if (run.spec.gather === null) throw new UserError(`job ${run.job} has no gather`, 'add `gather:` to the job file');
  }

  /** Run the gather of a run whose tasks all succeeded, again. */
  async gather(run: RunRecord): Promise<GatherOutcome> {
    await this.checkGather(run);
    if (run.backend === 'workers') {
      // A worker claims it: on the workers backend the gather runs where the outputs can be read.
      await this.store.commit({ run: { id: run.id, state: 'running', endedAt: null, gatherState: 'pending' } });
      const outcome = await (await watchQueuedRun(this.store, (await this.store.getRun(run.id))!, this.alerts)).done;
      return outcome.gather ?? 'failed';
    }
    await this.claim(run);
    const backend = await this.openBackend(run.spec, run);
    const waiter = new ResultWaiter();
    try {
      await backend.start(waiter.deliver);
      return await runGather({ store: this.store, backend, layout: this.layout, run, awaitResult: waiter.wait }, { force: true });
    } finally {
      await backend.close();
      await this.store.releaseRun(run.id, this.me);
    }
  }

  /** A run by id or job name (its latest run); the latest run of all when omitted. */
  async resolveRun(ref?: string): Promise<RunRecord> {
    const run = ref === undefined ? (await this.store.listRuns({ limit: 1 }))[0] : await this.findRun(ref);
    if (!run) {
      throw new UserError(ref === undefined ? 'there are no runs here yet' : `no run "${ref}"`, ref === undefined ? 'start one with `fanout run job.yaml`' : 'see `fanout runs`');
    }
    return run;
  }

  /** Wait (bounded) for alerts still being delivered, then close the store. */
  async close(): Promise<void> {
    await this.alerts.drain(this.options.alertWaitMs ?? ALERT_WAIT_MS);
    await this.store.close();
  }

  private async findRun(ref: string): Promise<RunRecord | undefined> {
    if (/^\d+$/.test(ref)) {
      const run = await this.store.getRun(Number(ref));
      if (run) return run;
    }
    return (await this.store.listRuns({ job: ref, limit: 1 }))[0];
  }

  private async claim(run: RunRecord): Promise<void> {
    const holder = await this.store.claimRun(run.id, this.me, isAlive);
    if (holder) throw alreadyRunning(run.job, holder);
  }

  /**
   * Tasks whose cache key matches done work whose output is still where this run keeps it, and,
   * with `skip_if_outputs_exist`, tasks whose outputs are committed whatever the cache says.
   */
  private async doneTasks(planned: PlannedJob): Promise<Set<number>> {
    const { spec, tasks } = planned;
    const hits = await this.store.lookupCache(tasks.map((task) => task.cacheKey));
    const candidates = spec.skipIfOutputsExist ? tasks : tasks.filter((task) => hits.get(task.cacheKey)?.out === task.out);
    const committed = await committedTasks(spec.outdir, candidates.map((task) => task.name));
    return new Set(candidates.filter((task) => committed.has(task.name)).map((task) => task.index));
  }

  /** The backend a run (or, for `check`, a plan) uses: the spec's, local unless it names another. */
  private openBackend(spec: JobSpec, run: RunPlace, purpose: 'run' | 'check' = 'run'): Promise<Backend> {
    const runDir = purpose === 'check' ? join(this.layout.home, 'check') : this.layout.runDir(run);
    return openBackend(
      spec.backend ?? 'local',
      spec,
      { runDir, jobName: `fanout-${spec.name}-${run.id}` },
      { limits: this.options.limits, graceMs: this.options.graceMs ?? DEFAULT_GRACE_MS, factsSeen: this.clusterFacts },
    );
  }

  /** Refuse before the run is recorded what the scheduler would refuse at submission. */
  private async checkWithScheduler(backend: ClusterBackend, planned: PlannedJob, locate: Locate): Promise<void> {
    const { spec } = planned;
    const asked = spec.cluster?.maxArraySize;
    if (asked !== undefined && asked > backend.clusterMaxArraySize) {
      throw new JobFileError(
        locate('cluster.maxArraySize'),
        `asks for arrays of ${asked} elements but the cluster allows at most ${backend.clusterMaxArraySize}`,
        `set it to at most ${backend.clusterMaxArraySize}, or remove it`,
      );
    }
    const place = { id: 0, spec };
    const complaint = await backend.check(this.sampleLaunches(planned, backend, place), join(this.layout.home, 'check'));
    if (complaint !== null) {
      throw new UserError(
        `${backend.name} refuses this job's first array: ${complaint}`,
        `change the job's resources or its ${backend.name} settings (see \`fanout render ${planned.spec.file} --backend ${backend.name}\`)`,
      );
    }
  }

  /** Launches standing for the first array a run would submit (same resources; the first tasks). */
  private sampleLaunches(planned: PlannedJob, backend: ClusterBackend, run: RunPlace): AttemptLaunch[] {
    const { spec } = planned;
    const count = Math.min(planned.tasks.length, backend.defaultConcurrency(), backend.maxArraySize * backend.pack);
    return planned.tasks.slice(0, count).map((task) => ({
      id: task.index,
      attemptDir: this.layout.attemptDir(run, task.index, 1),
      cwd: this.layout.attemptDir(run, task.index, 1),
      cpus: spec.resources.cpus,
      memoryBytes: spec.resources.memoryBytes,
      timeMs: spec.resources.timeMs,
      command: 'true',
      env: {},
    }));
  }

  private async drive(claimed: RunRecord, concurrency?: number, options: { stopAtOnce?: boolean } = {}): Promise<RunHandle> {
    const { store, layout } = this;
    const backend = await this.openBackend(claimed.spec, claimed);
    const previousLauncher = claimed.launcher;
    const listeners: Array<(progress: Progress) => void> = [];
    const coordinator = await Coordinator.open({
      store,
      backend,
      layout,
      run: claimed,
      command: parseTemplate(claimed.spec.command),
      capacity: backend.capacity(),
      concurrency: concurrency ?? claimed.spec.concurrency ?? backend.defaultConcurrency(),
      alerts: this.alerts,
      onProgress: (progress) => listeners.forEach((listener) => listener(progress)),
    });
    const waiter = new ResultWaiter();
    const launcher = await backend.start((id, result) => (id === GATHER_ATTEMPT_ID ? waiter.deliver(id, result) : coordinator.onResult(id, result)));
    await store.setLauncher(claimed.id, launcher);
    await this.settleInterruptedGather(claimed);
    await coordinator.recover(previousLauncher !== null && isAlive(previousLauncher) ? previousLauncher : null);
    if (options.stopAtOnce) coordinator.stop();

    const done = (async (): Promise<RunOutcome> => {
      try {
        await coordinator.drive();
        await removeReplacedOutputs(store, claimed);
        const counts = coordinator.progress().counts;
        const allDone = counts.succeeded + counts.skipped === coordinator.progress().total;
        let gather: GatherOutcome | null = null;
        if (!coordinator.isStopping && allDone && claimed.spec.gather !== null) {
          gather = await runGather({ store, backend, layout, run: claimed, awaitResult: waiter.wait }, { force: false });
        }
        const state: RunState = coordinator.isStopping ? 'cancelled' : allDone && gather !== 'failed' ? 'succeeded' : 'failed';
        await store.commit({ run: { id: claimed.id, state, endedAt: Date.now() } });
        // This process holds the run, so its end is committed once, here; the alert follows it.
        this.alerts.runEnded(store, claimed, state);
        return { run: (await store.getRun(claimed.id))!, counts: await store.counts(claimed.id), gather };
      } finally {
        await backend.close();
        await store.setLauncher(claimed.id, null);
        await store.releaseRun(claimed.id, this.me);
      }
    })();

    return {
      run: claimed,
      interrupt: 'stops',
      progress: () => coordinator.progress(),
      onProgress: (listener) => listeners.push(listener),
      stop: () => coordinator.stop(),
      done,
    };
  }

  /** A gather cut off by a crash has no result to adopt; it simply runs again. */
  private async settleInterruptedGather(run: RunRecord): Promise<void> {
    const cut = (await this.store.runningAttempts(run.id)).filter((attempt) => attempt.index === GATHER_INDEX);
    if (cut.length === 0) return;
    await this.store.commit({
      results: cut.map((attempt) => ({
        runId: run.id,
        index: GATHER_INDEX,
        attempt: attempt.attempt,
        result: lostResult('the coordinator stopped while the gather ran'),
        task: { state: 'failed', memory: null, timeMs: null, retryBase: 0 },
      })),
    });
  }
}

/**
 * A commit that replaced an earlier output swapped the old one into the attempt's staging
 * folder. Clear those once per drive, off the scheduling path; staging folders of attempts that
 * failed stay for inspection.
 */
async function removeReplacedOutputs(store: Store, run: RunRecord): Promise<void> {
  const staging = dirname(stagingOut(run.spec.outdir, run.id, 0, 1));
  let entries: string[];
  try {
    entries = readdirSync(staging);
  } catch {
    return;
  }
  const succeeded = new Map((await store.listTasks(run.id, { state: 'succeeded' })).map((task) => [task.index, task.attempts]));
  for (const entry of entries) {
    const [runId, index, attempt] = entry.split('.').map(Number);
    if (runId === run.id && succeeded.get(index!) === attempt) rmSync(join(staging, entry), { recursive: true, force: true });
  }
}

function alreadyRunning(job: string, holder: ProcessIdentity): UserError {
  return new UserError(
    `job ${job} is already running under another fanout (pid ${holder.pid} on ${holder.host})`,
    'wait for it to finish, or stop it with `fanout cancel`',
  );
}

/** Hands one attempt's result to whoever awaits it. */
class ResultWaiter {
  private readonly waiting = new Map<number, (result: AttemptResult) => void>();
  private readonly arrived = new Map<number, AttemptResult>();

  readonly deliver = (id: number, result: AttemptResult): void => {
    const resolve = this.waiting.get(id);
    if (resolve) {
      this.waiting.delete(id);
      resolve(result);
    } else this.arrived.set(id, result);
  };

  readonly wait = (id: number): Promise<AttemptResult> => {
    const early = this.arrived.get(id);
    if (early) {
      this.arrived.delete(id);
      return Promise.resolve(early);
    }
    return new Promise((resolve) => this.waiting.set(id, resolve));
  };
}
