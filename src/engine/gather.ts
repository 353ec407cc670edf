import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AttemptLaunch, PushBackend } from '../backends/backend.js';
import { UserError } from '../errors.js';
import type { JobSpec } from '../job/job-spec.js';
import { parseTemplate, renderTemplate, type Template, type TemplateValue } from '../job/template.js';
import { inContainer } from '../container/container-command.js';
import { imageNamesOnly } from '../container/container-plan.js';
import type { AttemptResult } from '../runner/launcher.js';
import { joinLocation } from '../storage/location.js';
import type { Storage } from '../storage/storage.js';
import type { CacheEntry, GatherOutcome, RunRecord, TaskRecord } from '../store/records.js';
import type { RunQueries } from '../store/run-queries.js';
import type { Store } from '../store/store.js';
import { finalOut, type HomeLayout } from './home-layout.js';
import { hashEnv } from './cache-key.js';
import { jobValues, taskEnvironment } from './plan-job.js';
import { renderSoftwareEnvironment, withSetup } from './software-environment.js';

/**
 * The gather step: once every task of a run succeeded, one command over all their committed
 * outputs — `{{ outputs }}` (one quoted word per task, in task order) and `{{ manifest }}` (a
 * JSON file of each task's name, variables and output folder) — run in the outdir. One
 * implementation for every backend: a coordinator runs it through its push backend
 * (`runGather`), a pull worker through its own launcher after claiming it; the store lets only
 * one gather of a run run at a time.
 */

/** The attempt id the gather runs under on a push backend; task attempts are numbered from 1. */
export const GATHER_ATTEMPT_ID = 0;

/** A command longer than this goes through a script file: one argument may not exceed 128 KiB. */
const INLINE_COMMAND_LIMIT = 64 * 1024;

/** Where one gather attempt runs. */
export interface GatherPlaces {
  /** The attempt's folder on this machine: logs and the result record go here. */
  attemptDir: string;
  /** Where the manifest is written. */
  manifest: string;
  /** The id the launcher reports the attempt under. */
  launchId: number;
}

/** A gather attempt ready to launch; `finish` uploads what it wrote when the outdir is in object storage. */
export interface PreparedGather {
  launch: AttemptLaunch;
  finish: (result: AttemptResult) => Promise<AttemptResult>;
}

export class GatherStep {
  /** Same gather command over the same task results: nothing new to gather. */
  readonly cacheKey: string;

  private constructor(
    private readonly run: RunRecord,
    private readonly tasks: TaskRecord[],
    private readonly template: Template,
    layout: HomeLayout,
    private readonly storage: Storage,
    producers: string[],
  ) {
    // Keyed on where the outputs are kept, not on a worker's local copies of them.
    const spec = run.spec;
    const outputs = tasks.map((task) => finalOut(spec.outdir, task.name));
    const values = { ...jobValues(spec), outputs, manifest: layout.manifestPath(run), outdir: spec.outdir };
    const environment = renderSoftwareEnvironment(spec, values);
    this.cacheKey = gatherKey(withSetup(environment.setup, renderTemplate(template, values)), environment.env, producers);
  }

  /** The gather of `run`, over its tasks as they are now; null when the job has none. */
  static async load(queries: RunQueries, layout: HomeLayout, storage: Storage, run: RunRecord): Promise<GatherStep | null> {
    if (run.spec.gather === null) return null;
    const tasks = await queries.listTasks(run.id);
    return new GatherStep(run, tasks, parseTemplate(run.spec.gather), layout, storage, await producingAttempts(queries, run, tasks));
  }

  /**
   * Render one attempt. With an outdir in object storage it runs in a local mirror of the
   * outdir beside its attempt folder: every task's committed outputs are downloaded into
   * `<mirror>/<task>`, and what the gather writes beside them is uploaded when it succeeds.
   */
  async prepare(attempt: number, places: GatherPlaces): Promise<PreparedGather> {
    const { run, tasks, storage } = this;
    const spec = run.spec;
    const mirrored = !storage.isLocal(spec.outdir);
    const outdir = mirrored ? mirroredOutdir(places.attemptDir) : spec.outdir;
    mkdirSync(outdir, { recursive: true });
    if (mirrored) {
      for (const task of tasks) await storage.getTree(finalOut(spec.outdir, task.name), join(outdir, task.name));
    }
    const outputs = tasks.map((task) => (mirrored ? join(outdir, task.name) : finalOut(spec.outdir, task.name)));
    writeManifest(places.manifest, tasks, outputs);
    const values = { ...jobValues(spec), outputs, manifest: places.manifest, outdir };
    // The gather runs with the tasks' `setup:` and `env:`: the tools it calls come from the same modules.
    const environment = renderSoftwareEnvironment(spec, values);
    const command = withSetup(environment.setup, renderTemplate(this.template, values));
    mkdirSync(places.attemptDir, { recursive: true });
    const launch: AttemptLaunch = {
      id: places.launchId,
      attemptDir: places.attemptDir,
      cwd: outdir,
      cpus: 1,
      memory: null,
      timeMs: null,
      command: commandOrScript(command, places.attemptDir),
      env: {
        ...environment.env,
        ...taskEnvironment(
          { ...jobValues(spec), manifest: places.manifest, outdir },
          { FANOUT_RUN: String(run.id), FANOUT_TASK: 'gather', FANOUT_ATTEMPT: String(attempt) },
        ),
      },
    };
    return { launch: gatherInContainer(spec, launch, values), finish: this.finisher(places.attemptDir) };
  }

  /**
   * What completes an attempt once it ended: with an outdir in object storage, uploading what the
   * gather wrote in its mirror. Also for an attempt an earlier process launched (adopted).
   */
  finisher(attemptDir: string): (result: AttemptResult) => Promise<AttemptResult> {
    const { run, tasks, storage } = this;
    const spec = run.spec;
    const mirrored = !storage.isLocal(spec.outdir);
    const outdir = mirroredOutdir(attemptDir);
    const taskNames = new Set(tasks.map((task) => task.name));
    return async (result: AttemptResult): Promise<AttemptResult> => {
      if (result.reason !== 'ok' || !mirrored) return result;
      try {
        for (const entry of readdirSync(outdir, { withFileTypes: true })) {
          if (taskNames.has(entry.name)) continue;
          const target = joinLocation(spec.outdir, entry.name);
          if (entry.isDirectory()) await storage.putTree(join(outdir, entry.name), target);
          else await storage.putFile(join(outdir, entry.name), target);
        }
        return result;
      } catch (error) {
        return { ...result, reason: 'infra', error: `uploading the gather's outputs failed: ${(error as Error).message}` };
      }
    };
  }
}

export interface GatherContext {
  store: Store;
  storage: Storage;
  /** Where the gather runs (see `gatherBackendSpec`), started; its results go to `awaitResult`. */
  backend: PushBackend;
  layout: HomeLayout;
  run: RunRecord;
  /** Resolves with the gather attempt's result once the backend reports it. */
  awaitResult: (id: number) => Promise<AttemptResult>;
}

export interface GatherOptions {
  /** Run it even when the same gather already succeeded over the same task results (`fanout gather`). */
  force: boolean;
  /** False: only see an earlier gather to its end, start none (the run's tasks did not all succeed, or it stops). */
  start: boolean;
  /** Aborted when the run stops: a gather running is cancelled, none is started. */
  signal?: AbortSignal;
}

/**
 * Run a run's gather on a push backend, from this process: one at a time, like a task. A gather
 * an earlier coordinator started and did not see end is adopted first, and watched to its end
 * through the launcher (or scheduler) that still runs it: it is never run again beside itself.
 * Only a gather that vanished without a result (`lost`) is started anew. Skipped when the same
 * gather already succeeded over the same task results, unless forced. Null when nothing ran.
 */
export async function runGather(context: GatherContext, options: GatherOptions): Promise<GatherOutcome | null> {
  const { store, backend, layout, run } = context;
  const step = await GatherStep.load(store, layout, context.storage, run);
  if (step === null) return null;
  const adopted = await watchEarlierGather(context, step, options.signal);
  if (options.signal?.aborted || !options.start) return adopted === 'lost' ? 'failed' : adopted;
  if (adopted !== null && adopted !== 'lost' && !options.force) return adopted;
  if (!options.force && (await store.gatherDone(step.cacheKey))) {
    await store.commit({ run: { id: run.id, gatherState: 'skipped' } });
    return 'skipped';
  }
  const started = await store.startGather(run.id, { dir: (attempt) => layout.gatherDir(run, attempt), launchedAt: Date.now(), launcher: backend.supervisor() });
  if (started === null) throw new UserError(`a gather of run ${run.id} is running already`, 'wait for it to end (`fanout status`)');
  const prepared = await step.prepare(started.attempt, { attemptDir: started.dir, manifest: layout.manifestPath(run), launchId: GATHER_ATTEMPT_ID });
  backend.submit([prepared.launch]);
  const result = await prepared.finish(await awaitCancellable(context, options.signal));
  return (await endGather(context, step, started.attempt, result)) ?? 'failed';
}

/**
 * The gather attempt an earlier coordinator left `running`, adopted and seen to its end: its
 * outcome, `lost` when it vanished without a result, or null when there was none.
 */
async function watchEarlierGather(context: GatherContext, step: GatherStep, signal: AbortSignal | undefined): Promise<GatherOutcome | 'lost' | null> {
  const earlier = (await context.store.gatherAttempts(context.run.id)).find((attempt) => attempt.state === 'running');
  if (!earlier) return null;
  context.backend.adopt([{ id: GATHER_ATTEMPT_ID, attemptDir: earlier.dir }], earlier.launcher);
  const result = await step.finisher(earlier.dir)(await awaitCancellable(context, signal));
  const outcome = await endGather(context, step, earlier.attempt, result);
  return result.reason === 'lost' ? 'lost' : outcome;
}

/** The gather attempt's result; when the run stops meanwhile, the attempt is cancelled first. */
function awaitCancellable(context: GatherContext, signal: AbortSignal | undefined): Promise<AttemptResult> {
  const cancel = () => context.backend.cancel([GATHER_ATTEMPT_ID], { force: false });
  if (signal?.aborted) cancel();
  else signal?.addEventListener('abort', cancel, { once: true });
  return context.awaitResult(GATHER_ATTEMPT_ID).finally(() => signal?.removeEventListener('abort', cancel));
}

/** Record how a gather attempt ended; null when it had ended already (the first word stands). */
async function endGather(context: GatherContext, step: GatherStep, attempt: number, result: AttemptResult): Promise<GatherOutcome | null> {
  const succeeded = result.reason === 'ok';
  const applied = await context.store.endGather({
    runId: context.run.id,
    attempt,
    result,
    gatherState: succeeded ? 'succeeded' : 'failed',
    cacheKey: succeeded ? step.cacheKey : undefined,
  });
  if (!applied) return null;
  return succeeded ? 'succeeded' : 'failed';
}

/** Where a gather attempt runs when the outdir is in object storage: a local mirror beside its folder. */
function mirroredOutdir(attemptDir: string): string {
  return `${attemptDir}.out`;
}

function writeManifest(path: string, tasks: TaskRecord[], outputs: string[]): void {
  const entries = tasks.map((task, i) => ({ index: task.index, name: task.name, vars: task.vars, out: outputs[i] }));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, `${JSON.stringify(entries, null, 1)}\n`);
  renameSync(`${path}.tmp`, path);
}

/**
 * Which attempt wrote each task's output: the task's own last one, or for a task skipped as done
 * work the attempt the cache remembers. Task results are these, not the cache keys: a run with
 * `--fresh` writes every output anew over the same keys, and its gather must run again.
 */
async function producingAttempts(queries: RunQueries, run: RunRecord, tasks: TaskRecord[]): Promise<string[]> {
  const skipped = tasks.filter((task) => task.state === 'skipped').map((task) => task.cacheKey);
  const origins = skipped.length > 0 ? await queries.lookupCache(skipped) : new Map<string, CacheEntry>();
  return tasks.map((task) => {
    const origin = task.state === 'skipped' ? origins.get(task.cacheKey) : undefined;
    if (origin) return `${origin.runId}.${origin.index}.${origin.attempt}`;
    return task.state === 'skipped' ? task.cacheKey : `${run.id}.${task.index}.${task.attempts}`;
  });
}

function gatherKey(command: string, env: Readonly<Record<string, string>>, producers: string[]): string {
  const hash = createHash('sha256').update(command);
  hashEnv(hash, env);
  for (const producer of producers) hash.update(`\0${producer}`);
  return `gather:${hash.digest('hex').slice(0, 32)}`;
}

function commandOrScript(command: string, attemptDir: string): string {
  if (command.length <= INLINE_COMMAND_LIMIT) return command;
  mkdirSync(attemptDir, { recursive: true });
  const script = join(attemptDir, '.fanout.sh');
  writeFileSync(script, command);
  return `. '${script.replace(/'/g, `'\\''`)}'`;
}

/**
 * The job as the backend that runs its gather sees it: with `gather_on: local` on another backend
 * (a cluster), this machine, where the coordinator runs, so a short gather does not wait in the
 * queue; otherwise the job itself, unchanged.
 */
export function gatherBackendSpec(spec: JobSpec): JobSpec {
  return spec.gatherOn === 'local' && (spec.backend ?? 'local') !== 'local' ? { ...spec, backend: 'local' } : spec;
}

/**
 * The gather runs in the tasks' image when that image does not depend on a task's variables (one
 * image for the job); with an image per task, it runs where fanout runs it, outside any image.
 */
function gatherInContainer(spec: JobSpec, launch: AttemptLaunch, values: Record<string, TemplateValue>): AttemptLaunch {
  const plan = spec.containerPlan ?? null;
  if (plan === null || !imageNamesOnly(plan, values)) return launch;
  return inContainer(launch, plan, values, spec.baseDir);
}
