import { relative, sep } from 'node:path';
import { JobFileError, UserError } from '../errors.js';
import type { JobSpec } from '../job/job-spec.js';
import type { Locate } from '../job/field-location.js';
import { joinLocation } from '../storage/location.js';
import type { Storage } from '../storage/storage.js';
import type { Backend } from '../backends/backend.js';
import type { NewTask } from '../store/records.js';

/**
 * Refuse, before a run is recorded, a workdir or outdir its backend cannot use: object storage
 * is for pull workers (the node-side runner of a cluster and the local launcher write to
 * folders), and it must be reachable with the credentials at hand, its bucket existing.
 */
export async function checkLocations(
  spec: JobSpec,
  locate: Locate,
  options: { storage: Storage; backend: Pick<Backend, 'name' | 'objectStorage' | 'dispatch'>; sharedStore: boolean },
): Promise<void> {
  const { backend, storage } = options;
  for (const field of ['workdir', 'outdir'] as const) {
    const location = spec[field];
    if (location === null || storage.isLocal(location)) continue;
    if (!backend.objectStorage) {
      throw new JobFileError(
        locate(field),
        `${location} is in object storage, which only the workers backend can use (the ${backend.name} backend writes to folders)`,
        'add `backend: workers` (or pass --backend workers) and start workers with `fanout workers start`, or use a folder',
      );
    }
    try {
      await storage.check(location);
    } catch (error) {
      if (error instanceof UserError) throw new JobFileError(locate(field), error.message, error.fix, { cause: error });
      throw error;
    }
  }
  // Pull workers may run on other machines: they must reach the work folder too.
  if (backend.dispatch !== 'pull') return;
  if (spec.workdir === null && options.sharedStore) {
    throw new JobFileError(
      locate('workdir'),
      "pull workers on other machines cannot read this machine's .fanout/work",
      'set `workdir:` to an s3://bucket/prefix URI, or to a folder every worker can reach',
    );
  }
  if (spec.workdir !== null && !storage.isLocal(spec.workdir) && storage.isLocal(spec.outdir)) {
    throw new JobFileError(
      locate('outdir'),
      `outputs would go to ${spec.outdir}, a folder on whichever machine runs each task, while the workdir is in object storage`,
      'set `outdir:` to an s3://bucket/prefix URI too',
    );
  }
}

/**
 * Chunk files are cut on the machine that plans the run; workers that share no disk with it
 * read them from the workdir. Upload each once (a chunk's folder is named by its content) and
 * point the tasks at the uploaded copies, which workers stage in like any s3:// input.
 */
export async function stageChunkFiles(storage: Storage, tasks: NewTask[], chunkDir: string, workdir: string | null): Promise<NewTask[]> {
  if (workdir === null || storage.isLocal(workdir)) return tasks;
  const uploaded = new Map<string, string>();
  const upload = async (file: string): Promise<string> => {
    let uri = uploaded.get(file);
    if (uri === undefined) {
      uri = joinLocation(workdir, 'chunks', ...relative(chunkDir, file).split(sep));
      if (!(await storage.exists(uri))) await storage.putFile(file, uri);
      uploaded.set(file, uri);
    }
    return uri;
  };
  const staged: NewTask[] = [];
  for (const task of tasks) {
    const vars: Record<string, string> = {};
    for (const [key, value] of Object.entries(task.vars)) vars[key] = value.startsWith(chunkDir + sep) ? await upload(value) : value;
    staged.push({ ...task, vars });
  }
  return staged;
}
