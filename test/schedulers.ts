import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe } from 'vitest';
import type { Sandbox } from './harness.js';

/**
 * The real schedulers the suites run against: a single-node SLURM and a single-node Grid Engine
 * started by scripts/hpc/*.sh. `.ci/run` starts both and sets FANOUT_REQUIRE_SCHEDULERS=1, so
 * in CI a scheduler that is not up fails its suite; elsewhere the suite skips with one line.
 */

export type BackendUnderTest = 'local' | 'slurm' | 'sge';

const SCRIPTS = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'hpc');

/** null when usable (its script's `status`: daemons up, a node or queue that takes jobs), else why not. */
function unavailable(backend: BackendUnderTest): string | null {
  if (backend === 'local') return null;
  try {
    execFileSync('bash', [join(SCRIPTS, `${backend}.sh`), 'status'], { stdio: 'pipe', timeout: 30_000 });
    return null;
  } catch (error) {
    const said = `${(error as { stdout?: Buffer }).stdout?.toString() ?? ''}${(error as { stderr?: Buffer }).stderr?.toString() ?? ''}`.trim().split('\n').at(-1);
    return `scripts/hpc/${backend}.sh status: ${said || (error as Error).message.split('\n')[0]}`;
  }
}

function requireSchedulers(): boolean {
  return process.env.FANOUT_REQUIRE_SCHEDULERS === '1';
}

/**
 * `describe` for a suite that needs a backend's scheduler: where it is not up, skipped with one
 * line saying how to start it — unless FANOUT_REQUIRE_SCHEDULERS=1 (CI), where it fails and says why.
 */
export function describeOn(backend: BackendUnderTest, title: string, body: () => void): void {
  const why = unavailable(backend);
  if (why !== null && !requireSchedulers()) {
    console.log(`${title}: skipped (${why}); start it with: bash scripts/hpc/${backend}.sh install && bash scripts/hpc/${backend}.sh start`);
    describe.skip(title, body);
    return;
  }
  describe(title, () => {
    beforeAll(() => {
      if (why !== null) throw new Error(`${backend} is required here (FANOUT_REQUIRE_SCHEDULERS=1) but not usable: ${why}`);
    });
    body();
  });
}

/** Job ids of a run's arrays (from its work folder's journal). */
export function runJobIds(box: Sandbox, run = 1): string[] {
  const arrays = box.path('.fanout', 'work', String(run), 'arrays');
  try {
    return readdirSync(arrays)
      .map((entry) => {
        try {
          return readFileSync(join(arrays, entry, 'job'), 'utf8').trim();
        } catch {
          return '';
        }
      })
      .filter(Boolean);
  } catch {
    return [];
  }
}

/** Which of these jobs' elements are still in the scheduler's queue. */
export function queuedElements(backend: 'slurm' | 'sge', jobIds: string[]): string[] {
  if (jobIds.length === 0) return [];
  if (backend === 'slurm') {
    const out = execFileSync('squeue', ['-h', '-r', '-o', '%i'], { encoding: 'utf8' });
    return out.split('\n').filter((line) => jobIds.includes(line.split('_')[0]!.trim()));
  }
  const out = execFileSync('qstat', ['-g', 'd'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => jobIds.includes(line.trim().split(/\s+/)[0]!));
}

/** Kill an array element the way a user or admin would, outside fanout. */
export function cancelElement(backend: 'slurm' | 'sge', jobId: string, element: number): void {
  if (backend === 'slurm') execFileSync('scancel', [`${jobId}_${element}`]);
  else execFileSync('qdel', [jobId, '-t', String(element)], { stdio: 'pipe' });
}

/** Scheduler commands a run issued, by command name (from its scheduler-commands.log). */
export function commandCounts(box: Sandbox, run = 1): Record<string, number> {
  const counts: Record<string, number> = {};
  let text = '';
  try {
    text = readFileSync(box.path('.fanout', 'work', String(run), 'scheduler-commands.log'), 'utf8');
  } catch {
    return counts;
  }
  for (const line of text.split('\n')) {
    const command = /: (\S+)/.exec(line)?.[1];
    if (command) counts[command] = (counts[command] ?? 0) + 1;
  }
  return counts;
}
