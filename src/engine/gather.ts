import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AttemptLaunch, PushBackend } from '../backends/backend.js';
import { UserError } from '../errors.js';
import { parseTemplate, renderTemplate, type Template } from '../job/template.js';
import type { AttemptResult } from '../runner/launcher.js';
import { joinLocation } from '../storage/location.js';
import type { Storage } from '../storage/storage.js';
import type { GatherOutcome, RunRecord, TaskRecord } from '../store/records.js';
import type { RunQueries } from '../store/run-queries.js';
import type { Store } from '../store/store.js';
import { finalOut, type HomeLayout } from './home-layout.js';
import { jobValues, taskEnvironment } from './plan-job.js';

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
  ) {
    // Keyed on where the outputs are kept, not on a worker's local copies of them.
    const spec = run.spec;
    const outputs = tasks.map((task) => finalOut(spec.outdir, task.name));
    this.cacheKey = gatherKey(renderTemplate(template, { ...jobValues(spec), outputs, manifest: layout.manifestPath(run), outdir: spec.outdir }), tasks);
  }

  /** The gather of `run`, over its tasks as they are now; null when the job has none. */
  static async load(queries: RunQueries, layout: HomeLayout, storage: Storage, run: RunRecord): Promise<GatherStep | null> {
    if (run.spec.gather === null) return null;
    return new GatherStep(run, await queries.listTasks(run.id), parseTemplate(run.spec.gather), layout, storage);
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
    const outdir = mirrored ? `${places.attemptDir}.out` : spec.outdir;
    mkdirSync(outdir, { recursive: true });
    if (mirrored) {
      for (const task of tasks) await storage.getTree(finalOut(spec.outdir, task.name), join(outdir, task.name));
    }
    const outputs = tasks.map((task) => (mirrored ? join(outdir, task.name) : finalOut(spec.outdir, task.name)));
    writeManifest(places.manifest, tasks, outputs);
    const command = renderTemplate(this.template, { ...jobValues(spec), outputs, manifest: places.manifest, outdir });
    mkdirSync(places.attemptDir, { recursive: true });
    const launch: AttemptLaunch = {
      id: places.launchId,
      attemptDir: places.attemptDir,
      cwd: outdir,
      cpus: 1,
      memory: null,
      timeMs: null,
      command: commandOrScript(command, places.attemptDir),
      env: taskEnvironment(
        { ...jobValues(spec), manifest: places.manifest, outdir },
        { FANOUT_RUN: String(run.id), FANOUT_TASK: 'gather', FANOUT_ATTEMPT: String(attempt) },
      ),
    };
    const taskNames = new Set(tasks.map((task) => task.name));
    return {
      launch,
      finish: async (result: AttemptResult): Promise<AttemptResult> => {
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
      },
    };
  }
}

export interface GatherContext {
  store: Store;
  storage: Storage;
  backend: PushBackend;
  layout: HomeLayout;
  run: RunRecord;
  /** Resolves with the gather attempt's result once the backend reports it. */
  awaitResult: (id: number) => Promise<AttemptResult>;
}

/**
 * Run a run's gather on a push backend, from this process. Skipped when the same gather already
 * succeeded over the same task results, unless forced.
 */
export async function runGather(context: GatherContext, options: { force: boolean }): Promise<GatherOutcome> {
  const { store, backend, layout, run } = context;
  const step = await GatherStep.load(store, layout, context.storage, run);
  if (step === null) return 'skipped';
  if (!options.force && (await store.gatherDone(step.cacheKey))) {
    await store.commit({ run: { id: run.id, gatherState: 'skipped' } });
    return 'skipped';
  }
  const started = await store.startGather(run.id, { dir: (attempt) => layout.gatherDir(run, attempt), launchedAt: Date.now() });
  if (started === null) throw new UserError(`a gather of run ${run.id} is running already`, 'wait for it to end (`fanout status`)');
  const prepared = await step.prepare(started.attempt, { attemptDir: started.dir, manifest: layout.manifestPath(run), launchId: GATHER_ATTEMPT_ID });
  backend.submit([prepared.launch]);
  const result = await prepared.finish(await context.awaitResult(GATHER_ATTEMPT_ID));
  const succeeded = result.reason === 'ok';
  await store.endGather({
    runId: run.id,
    attempt: started.attempt,
    result,
    gatherState: succeeded ? 'succeeded' : 'failed',
    cacheKey: succeeded ? step.cacheKey : undefined,
  });
  return succeeded ? 'succeeded' : 'failed';
}

function writeManifest(path: string, tasks: TaskRecord[], outputs: string[]): void {
  const entries = tasks.map((task, i) => ({ index: task.index, name: task.name, vars: task.vars, out: outputs[i] }));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, `${JSON.stringify(entries, null, 1)}\n`);
  renameSync(`${path}.tmp`, path);
}

function gatherKey(command: string, tasks: TaskRecord[]): string {
  const hash = createHash('sha256').update(command);
  for (const task of tasks) hash.update(`\0${task.cacheKey}`);
  return `gather:${hash.digest('hex').slice(0, 32)}`;
}

function commandOrScript(command: string, attemptDir: string): string {
  if (command.length <= INLINE_COMMAND_LIMIT) return command;
  mkdirSync(attemptDir, { recursive: true });
  const script = join(attemptDir, '.fanout.sh');
  writeFileSync(script, command);
  return `. '${script.replace(/'/g, `'\\''`)}'`;
}
