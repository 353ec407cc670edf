import { createHash } from 'node:crypto';
import { join } from 'node:path';

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
  constructor(readonly home: string) {}

  get storePath(): string {
    return join(this.home, 'state.db');
  }

  get chunkDir(): string {
    return join(this.home, 'chunks');
  }

  /**
   * A run's work folder: under the home, or under the job's `workdir` (which on a cluster is on
   * the nodes' shared filesystem). Several homes may share a workdir, so there the folder name
   * carries a tag of the home as well as the run id.
   */
  runDir(run: RunPlace): string {
    if (!run.spec.workdir) return join(this.home, 'work', String(run.id));
    const tag = createHash('sha256').update(this.home).digest('hex').slice(0, 8);
    return join(run.spec.workdir, `${tag}-${run.id}`);
  }

  /**
   * An attempt's own working folder; its logs and result record sit in it. One level, not
   * `<index>/<attempt>`: creating folders is the costliest part of starting a tiny task.
   */
  attemptDir(run: RunPlace, index: number, attempt: number): string {
    return join(this.runDir(run), `${index}.${attempt}`);
  }

  gatherDir(run: RunPlace, attempt: number): string {
    return join(this.runDir(run), 'gather', String(attempt));
  }

  manifestPath(run: RunPlace): string {
    return join(this.runDir(run), 'manifest.json');
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

export function finalOut(outdir: string, taskName: string): string {
  return join(outdir, taskName);
}
