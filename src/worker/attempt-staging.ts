import { mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { RESULT_FILE, STDERR_FILE, STDOUT_FILE } from '../runner/result-record.js';
import { joinLocation } from '../storage/location.js';
import type { Storage } from '../storage/storage.js';

/**
 * Where a worker runs one attempt, and the copies in and out that object storage needs. An
 * attempt always runs in a local folder; when the run's workdir is in object storage that
 * folder is in the worker's scratch and its logs and result record are uploaded when it ends.
 */
export interface AttemptSite {
  /** The attempt's folder as the store records it (maybe an s3:// URI). */
  recorded: string;
  /** The folder the attempt runs in on this worker. */
  local: string;
  /** True when `local` is a scratch copy that is uploaded, then removed. */
  remote: boolean;
}

export function attemptSite(storage: Storage, recorded: string, scratch: string): AttemptSite {
  if (storage.isLocal(recorded)) return { recorded, local: recorded, remote: false };
  // From the run's folder down (`<store>-<run>/<task>.<attempt>`, `<store>-<run>/gather/<attempt>`):
  // two runs' attempts, gathers included, never share a scratch folder.
  const name = recorded.split('/').slice(-3).join('-');
  return { recorded, local: join(scratch, name), remote: true };
}

/**
 * Download every variable that names an object (`s3://...`) into the attempt's inputs folder and
 * give the task the local path instead. Each variable gets its own folder, so two inputs with
 * the same file name do not collide.
 */
export async function stageIn(storage: Storage, vars: Record<string, string>, site: AttemptSite): Promise<Record<string, string>> {
  const local: Record<string, string> = {};
  for (const [key, value] of Object.entries(vars)) {
    if (storage.isLocal(value) || value.endsWith('/')) {
      local[key] = value;
      continue;
    }
    const path = join(`${site.local}.in`, key, basename(value));
    await mkdir(join(`${site.local}.in`, key), { recursive: true });
    await storage.getFile(value, path);
    local[key] = path;
  }
  return local;
}

/** Upload the attempt's logs and result record (the result record last) next to where the store says they are. */
export async function stageOutLogs(storage: Storage, site: AttemptSite): Promise<void> {
  if (!site.remote) return;
  for (const file of [STDOUT_FILE, STDERR_FILE, RESULT_FILE]) {
    try {
      await storage.putFile(join(site.local, file), joinLocation(site.recorded, file));
    } catch (error) {
      // An attempt that never started has no logs; that is not worth failing its report over.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/** Remove the scratch copies of an attempt that has been reported. */
export async function clearSite(site: AttemptSite): Promise<void> {
  if (!site.remote) return;
  await Promise.all(['', '.in', '.out', '.staging'].map((suffix) => rm(`${site.local}${suffix}`, { recursive: true, force: true })));
}
