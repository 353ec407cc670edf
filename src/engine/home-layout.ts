import { join } from 'node:path';

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

  runDir(runId: number): string {
    return join(this.home, 'work', String(runId));
  }

  /**
   * An attempt's own working folder; its logs and result record sit in it. One level, not
   * `<index>/<attempt>`: creating folders is the costliest part of starting a tiny task.
   */
  attemptDir(runId: number, index: number, attempt: number): string {
    return join(this.runDir(runId), `${index}.${attempt}`);
  }

  gatherDir(runId: number, attempt: number): string {
    return join(this.runDir(runId), 'gather', String(attempt));
  }

  manifestPath(runId: number): string {
    return join(this.runDir(runId), 'manifest.json');
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
