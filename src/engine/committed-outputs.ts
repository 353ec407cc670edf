import { existsSync } from 'node:fs';
import { joinLocation } from '../storage/location.js';
import type { Storage } from '../storage/storage.js';
import { finalOut } from './home-layout.js';

/**
 * When a task's outputs count as done. In a folder, the launcher moves the staging folder into
 * place only when the attempt succeeds, so the folder existing is the mark. Object storage has no
 * rename: outputs are uploaded under the task's prefix and a marker object is written last, so a
 * prefix without its marker (an upload cut off by a killed worker) is never taken for done.
 */

const COMMITTED_MARKER = '.fanout-committed.json';

/** The names among `taskNames` whose outputs are committed in `outdir`. */
export async function committedTasks(storage: Storage, outdir: string, taskNames: string[]): Promise<Set<string>> {
  if (storage.isLocal(outdir)) return new Set(taskNames.filter((name) => existsSync(finalOut(outdir, name))));
  // One listing instead of a request per task.
  const objects = new Set((await storage.list(outdir)).map((object) => object.relative));
  return new Set(taskNames.filter((name) => objects.has(`${name}/${COMMITTED_MARKER}`)));
}

/** Upload an attempt's outputs (a local folder) as the task's committed outputs in object storage. */
export async function commitToObjectStorage(
  storage: Storage,
  localOut: string,
  outdir: string,
  taskName: string,
  attempt: { runId: number; index: number; attempt: number },
): Promise<void> {
  const prefix = finalOut(outdir, taskName);
  // The marker goes first and comes back last: in between, the prefix does not count as done.
  await storage.delete(joinLocation(prefix, COMMITTED_MARKER));
  await storage.deletePrefix(prefix);
  const files = existsSync(localOut) ? await storage.putTree(localOut, prefix) : 0;
  await storage.putText(joinLocation(prefix, COMMITTED_MARKER), `${JSON.stringify({ ...attempt, files, committedAt: new Date().toISOString() })}\n`);
}
