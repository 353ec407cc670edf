import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Backend } from '../backends/backend.js';
import type { AttemptResult } from '../runner/launcher.js';
import { parseTemplate, renderTemplate } from '../job/template.js';
import { GATHER_INDEX, type RunRecord, type Store, type TaskRecord } from '../store/store.js';
import { finalOut, type HomeLayout } from './home-layout.js';
import { taskEnvironment } from './plan-job.js';

/** The attempt id the gather runs under; task attempts are numbered from 1. */
export const GATHER_ATTEMPT_ID = 0;

/** A command longer than this goes through a script file: one argument may not exceed 128 KiB. */
const INLINE_COMMAND_LIMIT = 64 * 1024;

export interface GatherContext {
  store: Store;
  backend: Backend;
  layout: HomeLayout;
  run: RunRecord;
  /** Resolves with the gather attempt's result once the backend reports it. */
  awaitResult: (id: number) => Promise<AttemptResult>;
}

export type GatherOutcome = 'succeeded' | 'failed' | 'skipped';

/**
 * Run the job's gather over every task's committed output: `{{ outputs }}` (one quoted word
 * per task, in task order) and `{{ manifest }}` (a JSON file of each task's name, variables
 * and output folder). It runs in the outdir. Skipped when the same gather already succeeded over
 * the same task results, unless forced.
 */
export async function runGather(context: GatherContext, options: { force: boolean }): Promise<GatherOutcome> {
  const { store, backend, layout, run } = context;
  const spec = run.spec;
  if (spec.gather === null) return 'skipped';
  const tasks = await store.listTasks(run.id);
  const outputs = tasks.map((task) => finalOut(spec.outdir, task.name));
  const manifest = layout.manifestPath(run);
  writeManifest(manifest, tasks, outputs);

  const command = renderTemplate(parseTemplate(spec.gather), { ...spec.vars, outputs, manifest, outdir: spec.outdir });
  const key = gatherKey(command, tasks);
  if (!options.force && (await store.lookupCache([key])).has(key)) {
    await store.commit({ run: { id: run.id, gatherState: 'skipped' } });
    return 'skipped';
  }

  const attempt = (await store.attempts(run.id, GATHER_INDEX)).length + 1;
  const dir = layout.gatherDir(run, attempt);
  const launchedAt = Date.now();
  await store.commit({
    launches: [{ runId: run.id, index: GATHER_INDEX, attempt, dir, cpus: 1, memory: null, timeMs: null, launchedAt }],
    run: { id: run.id, gatherState: 'running' },
  });
  mkdirSync(spec.outdir, { recursive: true });
  backend.submit([
    {
      id: GATHER_ATTEMPT_ID,
      attemptDir: dir,
      cwd: spec.outdir,
      cpus: 1,
      memoryBytes: null,
      timeMs: null,
      command: commandOrScript(command, dir),
      env: taskEnvironment({ ...spec.vars, manifest, outdir: spec.outdir }, { FANOUT_RUN: String(run.id), FANOUT_TASK: 'gather', FANOUT_ATTEMPT: String(attempt) }),
    },
  ]);
  const result = await context.awaitResult(GATHER_ATTEMPT_ID);
  const succeeded = result.reason === 'ok';
  await store.commit({
    results: [
      {
        runId: run.id,
        index: GATHER_INDEX,
        attempt,
        result,
        task: { state: succeeded ? 'succeeded' : 'failed', memory: null, timeMs: null, retryBase: 0 },
        cache: succeeded ? { key, runId: run.id, index: GATHER_INDEX, attempt, out: spec.outdir } : undefined,
      },
    ],
    run: { id: run.id, gatherState: succeeded ? 'succeeded' : 'failed' },
  });
  return succeeded ? 'succeeded' : 'failed';
}

export function writeManifest(path: string, tasks: TaskRecord[], outputs: string[]): void {
  const entries = tasks.map((task, i) => ({ index: task.index, name: task.name, vars: task.vars, out: outputs[i] }));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, `${JSON.stringify(entries, null, 1)}\n`);
  renameSync(`${path}.tmp`, path);
}

/** Same gather command over the same task results: nothing new to gather. */
export function gatherKey(command: string, tasks: TaskRecord[]): string {
  const hash = createHash('sha256').update(command);
  for (const task of tasks) hash.update(`\0${task.cacheKey}`);
  return `gather:${hash.digest('hex').slice(0, 32)}`;
}

export function commandOrScript(command: string, attemptDir: string): string {
  if (command.length <= INLINE_COMMAND_LIMIT) return command;
  mkdirSync(attemptDir, { recursive: true });
  const script = join(attemptDir, '.fanout.sh');
  writeFileSync(script, command);
  return `. '${script.replace(/'/g, `'\\''`)}'`;
}
