import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AttemptLaunch, Backend, Capacity, PlanSample, PushBackend } from '../backends/backend.js';
import { openBackend } from '../backends/open-backend.js';
import type { ClusterFacts } from '../backends/cluster/scheduler.js';
import { UserError } from '../errors.js';
import type { BackendName } from '../job/job-schema.js';
import type { JobSpec } from '../job/job-spec.js';
import { loadJob, type JobSource } from '../job/load-job-file.js';
import { ALERT_WAIT_MS, Alerts } from '../notify/alerts.js';
import { currentProcess, isAlive, type ProcessIdentity } from '../process-identity.js';
import { AttemptFiles } from '../storage/attempt-files.js';
import { resolveLocation } from '../storage/location.js';
import { openStorage } from '../storage/open-storage.js';
import type { Storage } from '../storage/storage.js';
import { openStore } from '../store/open-store.js';
import type { AttemptRecord, Dispatch, GatherAttemptRecord, GatherOutcome, RunRecord, TaskRecord } from '../store/records.js';
import type { Store } from '../store/store.js';
import { committedTasks } from './committed-outputs.js';
import { HomeLayout, refuseLostStore, type RunPlace } from './home-layout.js';
import { newTasks, planJob, type PlannedJob } from './plan-job.js';
import { PullDriver } from './pull-driver.js';
import { alreadyRunning, PushDriver } from './push-driver.js';
import type { RunDriver, RunHandle } from './run-handle.js';
import { checkLocations, stageChunkFiles } from './run-locations.js';
import { unattendedRun, type Unattended } from './unattended-run.js';

export interface EngineOptions {
  /** The fanout home (`.fanout/`): store, attempt folders, chunk files. */
  home: string;
  /** Hand fanout less of this machine than it has. */
  limits?: Partial<Pick<Capacity, 'cpus' | 'memory'>>;
  /** Between terminate and kill when an attempt is stopped (default 10 s). */
  graceMs?: number;
  /** A postgres:// URL; default: SQLite in the home. */
  store?: string;
  /** How long `close` waits for alerts still being delivered (default ALERT_WAIT_MS). */
  alertWaitMs?: number;
  /** Where workdirs and outdirs are read and written (default: folders and s3://, as the environment configures them). */
  storage?: Storage;
  /**
   * For commands that only read or check (`status`, `validate`, `render`...): a home that does
   * not exist is not created; a chunked job is split into a temporary folder, removed on close.
   */
  readOnly?: boolean;
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

/**
 * @internal Not part of the published types: the TypeScript API is `Fanout` (src/index.ts).
 *
 * The one place that knows how a run goes: plan, decide between a new run and a resume, record
 * it, and hand it to the driver of its dispatch (push: this process coordinates it; pull: pull
 * workers claim its tasks and this process watches). The CLI, the API and the dashboard are thin
 * faces over it. It never asks for a backend or a store by name: what differs is declared.
 */
export class Engine {
  private readonly me: ProcessIdentity = currentProcess();
  /** What cluster schedulers said about their clusters during this engine's life. */
  private readonly clusterFacts = new Map<string, ClusterFacts>();
  private readonly drivers: Record<Dispatch, RunDriver>;
  /** Where planning splits chunked inputs: the home's, or a temporary folder when the home must stay untouched. */
  private readonly chunkDir: string;

  /** Alerts of the runs this engine drives or settles; `close` waits for their deliveries. */
  readonly alerts: Alerts;
  /** Every location a run names, folders and object storage alike. */
  readonly storage: Storage;
  /** Attempts' logs, result records and return values, for every face. */
  readonly files: AttemptFiles;

  private constructor(
    private readonly options: EngineOptions,
    readonly store: Store,
    readonly layout: HomeLayout,
  ) {
    this.storage = options.storage ?? openStorage();
    this.files = new AttemptFiles(this.storage);
    this.alerts = new Alerts({ layout, storage: this.storage });
    this.chunkDir = options.readOnly && !existsSync(layout.home) ? mkdtempSync(join(tmpdir(), 'fanout-chunks-')) : layout.chunkDir;
    this.drivers = {
      push: new PushDriver(store, this.storage, layout, this.alerts, this.me, (spec, run) => this.openPushBackend(spec, run)),
      pull: new PullDriver(store, this.storage, this.alerts),
    };
  }

  static async open(options: EngineOptions): Promise<Engine> {
    const home = resolve(options.home);
    if (!options.store) refuseLostStore(home);
    const store = await openStore(options.store, home, { create: !options.readOnly });
    return new Engine(options, store, new HomeLayout(home, store.id));
  }

  /**
   * Load and plan a job (a job file, or an object from the API) without running it: every bad
   * input is refused here, including what the backend would refuse (a cluster's scheduler is
   * asked to check the first array without queueing it).
   */
  async plan(source: JobSource, options: PlanOptions = {}): Promise<PlannedJob> {
    const loaded = loadJob(source, { set: options.set });
    const { locate } = loaded;
    const spec: JobSpec = {
      ...loaded.spec,
      backend: options.backend ?? loaded.spec.backend,
      workdir: options.workdir === undefined ? loaded.spec.workdir : resolveLocation(process.cwd(), options.workdir),
    };
    const backend = await this.openBackend(spec, { id: 0, spec }, 'check');
    await checkLocations(spec, locate, { storage: this.storage, backend, sharedStore: this.store.shared });
    const planned = await planJob(spec, { locate, chunkDir: this.chunkDir, backend });
    await backend.preflight?.(this.planSample(planned, { id: 0, spec }), locate);
    return planned;
  }

  /** The script that would submit a job's first attempts (`fanout render`); null when its backend submits none. */
  async submissionScript(planned: PlannedJob): Promise<string | null> {
    const spec = planned.spec;
    const run = { id: ((await this.store.listRuns({ limit: 1 }))[0]?.id ?? 0) + 1, spec };
    const backend = await this.openBackend(spec, run);
    return backend.submissionScript?.(this.planSample(planned, run)) ?? null;
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
    if (latest?.state === 'running') {
      const driver = this.drivers[latest.dispatch];
      const samePlan = !options.fresh && latest.planKey === planned.planKey;
      if (latest.dispatch === 'pull' && !samePlan) {
        throw new UserError(
          `job ${job} has a run (${latest.id}) on the ${latest.backend} backend that is still going, with another plan`,
          `wait for it, or stop it with \`fanout cancel ${latest.id}\``,
        );
      }
      await driver.hold(latest);
      if (samePlan) return driver.follow(latest, { concurrency: options.concurrency });
      // The job changed since that run was cut off: settle it (adopting what finished) and start anew.
      await (
        await driver.follow(latest, { stopAtOnce: true })
      ).done;
    }
    const skipped = options.fresh ? new Set<number>() : await this.doneTasks(planned);
    const tasks = await stageChunkFiles(this.storage, newTasks(planned, skipped), this.layout.chunkDir, planned.spec.workdir);
    const created = await this.store.createRun(
      {
        job,
        jobFile: planned.spec.file,
        spec: planned.spec,
        backend: planned.backend,
        dispatch: planned.dispatch,
        planKey: planned.planKey,
        tasks,
        // A pull run needs no process to stay alive for it.
        coordinator: planned.dispatch === 'push' ? this.me : null,
      },
      isAlive,
    );
    if ('heldBy' in created) throw alreadyRunning(job, created.heldBy);
    return this.drivers[planned.dispatch].follow(created.run, { concurrency: options.concurrency });
  }

  /** Drive an earlier run again: requeue its failed (and, unless `failedOnly`, cancelled) tasks. */
  async retry(run: RunRecord, options: { failedOnly: boolean; concurrency?: number }): Promise<RunHandle> {
    const driver = this.drivers[run.dispatch];
    await driver.hold(run);
    const states = options.failedOnly ? ['failed'] : ['failed', 'cancelled'];
    const requeued = (await this.store.listTasks(run.id))
      .filter((task) => states.includes(task.state))
      .map((task) => ({ runId: run.id, index: task.index, state: 'pending' as const, resetRetries: true }));
    await this.store.commit({ taskStates: requeued, run: { id: run.id, state: 'running', endedAt: null, gatherState: null } });
    return driver.follow((await this.store.getRun(run.id))!, { concurrency: options.concurrency });
  }

  /**
   * Go on with a run that is still `running` after the process driving it went away: drive it
   * here (adopting what finished meanwhile), or, for pull dispatch, watch it.
   */
  async resume(run: RunRecord): Promise<RunHandle> {
    const driver = this.drivers[run.dispatch];
    await driver.hold(run);
    return driver.follow(run);
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

  /**
   * The attempts of a task by name (see `attemptsBehind`), or of the gather when `name` is
   * `gather` and no task has that name; null when the run has neither.
   */
  async attemptsNamed(run: RunRecord, name: string): Promise<Array<AttemptRecord | GatherAttemptRecord> | null> {
    const task = await this.store.getTask(run.id, name);
    if (task) return this.attemptsBehind(run.id, task);
    return name === 'gather' ? this.store.gatherAttempts(run.id) : null;
  }

  /** Stop a run: through its live coordinator, by settling it here when none is left, or (pull) in the store. */
  async cancel(run: RunRecord): Promise<'signalled' | 'settled' | 'not-running'> {
    if (run.state !== 'running') return 'not-running';
    return this.drivers[run.dispatch].cancel(run);
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
    return this.drivers[run.dispatch].gather(run);
  }

  /** A run by id or job name (its latest run); the latest run of all when omitted. */
  async resolveRun(ref?: string): Promise<RunRecord> {
    const run = ref === undefined ? (await this.store.listRuns({ limit: 1 }))[0] : await this.findRun(ref);
    if (!run) {
      throw new UserError(
        ref === undefined ? 'there are no runs here yet' : `no run "${ref}"`,
        ref === undefined ? 'start one with `fanout run job.yaml`' : 'see `fanout runs`',
      );
    }
    return run;
  }

  /** Which of these runs are recorded running with no live process driving them, and how to resume each. */
  async unattended(runs: readonly RunRecord[]): Promise<Map<number, Unattended>> {
    const found = new Map<number, Unattended>();
    const running = runs.filter((run) => run.state === 'running');
    if (running.length === 0) return found;
    const workers = running.some((run) => run.dispatch === 'pull') ? await this.store.listWorkers() : [];
    for (const run of running) {
      const unattended = unattendedRun(run, workers);
      if (unattended) found.set(run.id, unattended);
    }
    return found;
  }

  /** Wait (bounded) for alerts still being delivered, then close the store. */
  async close(): Promise<void> {
    await this.alerts.drain(this.options.alertWaitMs ?? ALERT_WAIT_MS);
    await this.store.close();
    if (this.chunkDir !== this.layout.chunkDir) rmSync(this.chunkDir, { recursive: true, force: true });
  }

  private async findRun(ref: string): Promise<RunRecord | undefined> {
    if (/^\d+$/.test(ref)) {
      const run = await this.store.getRun(Number(ref));
      if (run) return run;
    }
    return (await this.store.listRuns({ job: ref, limit: 1 }))[0];
  }

  /**
   * Tasks whose cache key matches done work whose output is still where this run keeps it, and,
   * with `skip_if_outputs_exist`, tasks whose outputs are committed whatever the cache says.
   */
  private async doneTasks(planned: PlannedJob): Promise<Set<number>> {
    const { spec, tasks } = planned;
    const hits = await this.store.lookupCache(tasks.map((task) => task.cacheKey));
    const candidates = spec.skipIfOutputsExist ? tasks : tasks.filter((task) => hits.get(task.cacheKey)?.out === task.out);
    const committed = await committedTasks(
      this.storage,
      spec.outdir,
      candidates.map((task) => task.name),
    );
    return new Set(candidates.filter((task) => committed.has(task.name)).map((task) => task.index));
  }

  /** The backend a run (or, for `check`, a plan) uses: the spec's, local unless it names another. */
  private openBackend(spec: JobSpec, run: RunPlace, purpose: 'run' | 'check' = 'run'): Promise<Backend> {
    const runDir = purpose === 'check' ? join(this.layout.home, 'check') : this.layout.runDir(run);
    return openBackend(
      spec.backend,
      spec,
      { runDir, jobName: `fanout-${spec.name}-${run.id}` },
      { limits: this.options.limits, graceMs: this.options.graceMs ?? DEFAULT_GRACE_MS, factsSeen: this.clusterFacts },
    );
  }

  private async openPushBackend(spec: JobSpec, run: RunPlace): Promise<PushBackend> {
    const backend = await this.openBackend(spec, run);
    if (backend.dispatch !== 'push') throw new Error(`run ${run.id}: the ${backend.name} backend is not driven by a coordinator`);
    return backend;
  }

  /** The job as a backend may check it: its first tasks' first attempts, each with its own resources. */
  private planSample(planned: PlannedJob, run: RunPlace): PlanSample {
    const { spec } = planned;
    return {
      spec,
      scratchDir: join(this.layout.home, 'check'),
      launches: (count: number): AttemptLaunch[] =>
        planned.tasks.slice(0, count).map((task) => ({
          id: task.index,
          attemptDir: this.layout.attemptDir(run, task.index, 1),
          cwd: this.layout.attemptDir(run, task.index, 1),
          cpus: task.resources.cpus,
          memory: task.resources.memory,
          timeMs: task.resources.timeMs,
          command: 'true',
          env: {},
        })),
    };
  }
}
