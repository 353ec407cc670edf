import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { isObjectStoreUri, joinLocation } from '../storage/location.js';
import { sqliteStorePath } from '../store/open-store.js';

/** What places a run's work folder: its id, and the workdir its job asked for. */
export interface RunPlace {
  id: number;
  spec: { workdir: string | null };
}

/**
 * Where fanout keeps things under its home (`.fanout/` by default): the store, each attempt's
 * working folder, chunk files, and the staging folders outputs are written into before commit.
 */
export class HomeLayout {
  /**
   * @param tag names this home's runs in a shared workdir: the store's id, so that every
   * process using the same store (a pull worker on another machine, say) finds the same folders.
   */
  constructor(
    readonly home: string,
    private readonly tag: string,
  ) {}

  /** Where the attempt folders of runs without a `workdir` live. */
  get workDir(): string {
    return join(this.home, 'work');
  }

  get chunkDir(): string {
    return join(this.home, 'chunks');
  }

  /**
   * A run's work folder: under the home, or under the job's `workdir` (which on a cluster is on
   * the nodes' shared filesystem, or in object storage). Several stores may share a workdir, so
   * there the folder name carries the store's tag as well as the run id.
   */
  runDir(run: RunPlace): string {
    if (!run.spec.workdir) return join(this.workDir, String(run.id));
    return joinLocation(run.spec.workdir, `${this.tag}-${run.id}`);
  }

  /**
   * An attempt's own working folder; its logs and result record sit in it. One level, not
   * `<index>/<attempt>`: creating folders is the costliest part of starting a tiny task.
   */
  attemptDir(run: RunPlace, index: number, attempt: number): string {
    return joinLocation(this.runDir(run), `${index}.${attempt}`);
  }

  gatherDir(run: RunPlace, attempt: number): string {
    return joinLocation(this.runDir(run), 'gather', String(attempt));
  }

  manifestPath(run: RunPlace): string {
    return joinLocation(this.runDir(run), 'manifest.json');
  }
}

/**
 * The folder an attempt writes its outputs into (`{{ out }}`). It sits inside the outdir so the
 * commit is a rename on one filesystem, and it is unique per run and attempt so leftovers of a
 * killed attempt are never mistaken for another's.
 */
export function stagingOut(outdir: string, runId: number, index: number, attempt: number): string {
  return join(outdir, '.fanout-staging', `${runId}.${index}.${attempt}`);
}

/**
 * The staging folders of a task's attempts before `attempt`. They are removed when it is
 * retried: a failed attempt's outputs are kept for inspection only until the next attempt, so
 * that retries of a task that fills a disk do not keep it full.
 */
export function earlierStaging(outdir: string, runId: number, index: number, attempt: number): string[] {
  // An outdir in object storage stages in each worker's scratch, which is cleared after every attempt.
  if (isObjectStoreUri(outdir)) return [];
  return Array.from({ length: attempt - 1 }, (_, earlier) => stagingOut(outdir, runId, index, earlier + 1));
}

/** Where a task's committed output is: a folder, or a prefix in object storage. */
export function finalOut(outdir: string, taskName: string): string {
  return joinLocation(outdir, taskName);
}

/**
 * Refuse a home whose SQLite store was emptied (truncated to 0 bytes: a full disk, a bad copy)
 * while attempt folders of its runs remain: opening it would start a new, empty store over them,
 * and their runs, cache and outputs' records would be forgotten without a word.
 */
export function refuseLostStore(home: string): void {
  const path = sqliteStorePath(home);
  // A new store's first pages may still be in its write-ahead log only: that is not a loss.
  if (sizeOf(path) !== 0 || (sizeOf(`${path}-wal`) ?? 0) > 0) return;
  const layout = new HomeLayout(home, '');
  let runFolders: string[];
  try {
    runFolders = readdirSync(layout.workDir);
  } catch {
    return;
  }
  if (runFolders.length === 0) return;
  throw new UserError(
    `the store ${path} is empty (0 bytes), but ${layout.workDir} holds the attempt folders of earlier runs: the store was lost, and fanout will not start over on top of them`,
    `restore ${path} from a backup, or move the home aside (e.g. \`mv ${home} ${home}.broken\`) to start a new one`,
  );
}

function sizeOf(path: string): number | undefined {
  return statSync(path, { throwIfNoEntry: false })?.size;
}

/**
 * Remove folders before the next attempt starts: it must find the room they took (a retried
 * task on a nearly full disk would otherwise fail, or be told the disk is full, because of its
 * own earlier attempt). Only retries pay this. A failure leaves the folder behind, which costs
 * room, not correctness.
 */
export function removeFolders(paths: readonly string[]): void {
  for (const path of paths) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // kept: see above
    }
  }
}
