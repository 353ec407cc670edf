import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AttemptLaunch } from '../backends/backend.js';
import { commandOrScript, gatherKey, writeManifest } from '../engine/gather.js';
import { finalOut } from '../engine/home-layout.js';
import { taskEnvironment } from '../engine/plan-job.js';
import type { AttemptResult } from '../runner/launcher.js';
import { parseTemplate, renderTemplate } from '../job/template.js';
import { isObjectStoreUri, joinLocation } from '../storage/location.js';
import { storageFor } from '../storage/open-storage.js';
import { GATHER_INDEX, type ResultChange, type RunRecord, type Store } from '../store/store.js';
import type { AttemptSite } from './attempt-staging.js';

export interface PreparedGather {
  launch: AttemptLaunch;
  /** Upload what the gather wrote (object-storage outdir) and say how it ended. */
  finish(result: AttemptResult): Promise<ResultChange>;
}

/**
 * The gather of a `workers` run, on whichever worker claimed it. With an outdir in object storage
 * it runs in a local mirror of the outdir: every task's committed outputs are downloaded into
 * `<mirror>/<task>`, the gather runs there as it would in the outdir, and what it writes beside
 * them is uploaded to the outdir when it succeeds.
 */
export async function prepareGather(store: Store, run: RunRecord, attempt: number, site: AttemptSite, launchId: number): Promise<PreparedGather> {
  const spec = run.spec;
  const tasks = await store.listTasks(run.id);
  const remoteOut = isObjectStoreUri(spec.outdir);
  const outdir = remoteOut ? `${site.local}.out` : spec.outdir;
  mkdirSync(outdir, { recursive: true });
  if (remoteOut) {
    for (const task of tasks) await storageFor(spec.outdir).getTree(finalOut(spec.outdir, task.name), join(outdir, task.name));
  }
  const outputs = tasks.map((task) => (remoteOut ? join(outdir, task.name) : finalOut(spec.outdir, task.name)));
  const manifest = join(`${site.local}.in`, 'manifest.json');
  writeManifest(manifest, tasks, outputs);
  const template = parseTemplate(spec.gather!);
  const command = renderTemplate(template, { ...spec.vars, outputs, manifest, outdir });
  // Keyed on where the outputs are kept, not on this worker's copies of them.
  const key = gatherKey(renderTemplate(template, { ...spec.vars, outputs: tasks.map((task) => finalOut(spec.outdir, task.name)), manifest: 'manifest.json', outdir: spec.outdir }), tasks);
  mkdirSync(site.local, { recursive: true });
  const launch: AttemptLaunch = {
    id: launchId,
    attemptDir: site.local,
    cwd: outdir,
    cpus: 1,
    memoryBytes: null,
    timeMs: null,
    command: commandOrScript(command, site.local),
    env: taskEnvironment({ ...spec.vars, manifest, outdir }, { FANOUT_RUN: String(run.id), FANOUT_TASK: 'gather', FANOUT_ATTEMPT: String(attempt) }),
  };
  const taskNames = new Set(tasks.map((task) => task.name));
  return {
    launch,
    async finish(result: AttemptResult): Promise<ResultChange> {
      let outcome = result;
      if (result.reason === 'ok' && remoteOut) {
        try {
          for (const entry of readdirSync(outdir, { withFileTypes: true })) {
            if (taskNames.has(entry.name)) continue;
            const target = joinLocation(spec.outdir, entry.name);
            if (entry.isDirectory()) await storageFor(spec.outdir).putTree(join(outdir, entry.name), target);
            else await storageFor(spec.outdir).putFile(join(outdir, entry.name), target);
          }
        } catch (error) {
          outcome = { ...result, reason: 'infra', error: `uploading the gather's outputs failed: ${(error as Error).message}` };
        }
      }
      const succeeded = outcome.reason === 'ok';
      return {
        runId: run.id,
        index: GATHER_INDEX,
        attempt,
        result: outcome,
        task: { state: succeeded ? 'succeeded' : 'failed', memory: null, timeMs: null, retryBase: 0 },
        cache: succeeded ? { key, runId: run.id, index: GATHER_INDEX, attempt, out: spec.outdir } : undefined,
      };
    },
  };
}
