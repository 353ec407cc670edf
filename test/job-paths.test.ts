import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { finished, Sandbox } from './harness.js';

/**
 * The rule for paths: every task runs in a folder of its own (so temporary files never collide),
 * and a relative path the user wrote means a path from where it was written — the job file's
 * folder for `vars:`, the current folder for `--set` — whatever folder fanout is started from.
 * The diamond job that found this failed every task with "Error opening file db.dmnd".
 */
describe('paths in a job file', { timeout: 240_000 }, () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  /** A job in its own folder, with its database beside it, started from the sandbox (another folder) by a relative path. */
  function diamondLikeJob(backend: 'local' | 'workers'): void {
    box.write('project/search/db.dmnd', 'database\n');
    box.write('project/search/notes.txt', 'notes beside the job\n');
    box.write(
      'project/search/job.yaml',
      [
        'name: search',
        `backend: ${backend}`,
        // `scratch.tmp` in the task's folder: two tasks writing it at once must not see each other's.
        'command: echo {{ item }} > scratch.tmp; cat {{ db }} {{ jobdir }}/notes.txt scratch.tmp > {{ out }}/{{ report }}; pwd > {{ out }}/cwd',
        'tasks:',
        '  each: [a, b]',
        'vars:',
        '  db: db.dmnd',
        // Not a file that exists: an output name, left as written.
        '  report: hits.tsv',
        '',
      ].join('\n'),
    );
  }

  function expectOutputs(): void {
    const cwds = new Set<string>();
    for (const item of ['a', 'b']) {
      const out = box.path('fanout-out', 'search', item);
      expect(readFileSync(`${out}/hits.tsv`, 'utf8')).toBe(`database\nnotes beside the job\n${item}\n`);
      cwds.add(readFileSync(`${out}/cwd`, 'utf8'));
    }
    expect(cwds.size).toBe(2);
  }

  it('resolves a var naming a file next to the job file, from any folder; {{ jobdir }} is that folder; each task runs in its own', async () => {
    diamondLikeJob('local');
    const result = await box.run(['run', 'project/search/job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    expectOutputs();
  });

  it('does the same on pull workers', async () => {
    diamondLikeJob('workers');
    const queued = await box.run(['run', 'project/search/job.yaml', '--detach']);
    expect(queued.code, queued.stderr).toBe(0);
    const worker = await finished(box.start(['worker', '--until-empty', '--scratch', box.path('scratch')]), 120_000);
    expect(worker.code, worker.stderr).toBe(0);
    expectOutputs();
  });

  it('resolves a --set path against the folder fanout is started from', async () => {
    diamondLikeJob('local');
    box.write('other.dmnd', 'another database\n');
    const result = await box.run(['run', 'project/search/job.yaml', '--set', 'db=other.dmnd']);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(box.path('fanout-out', 'search', 'a', 'hits.tsv'), 'utf8')).toMatch(/^another database\n/);
  });

  it('render shows the folder the task runs in and every value as the task gets it', async () => {
    diamondLikeJob('local');
    const result = await box.run(['render', 'project/search/job.yaml', '--task', 'b']);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe(`# task b, attempt 1, runs in its own folder: ${box.path('.fanout', 'work', '1', '1.1')}`);
    expect(lines).toContain(`# {{ db }} = ${box.path('project', 'search', 'db.dmnd')}`);
    expect(lines).toContain(`# {{ jobdir }} = ${box.path('project', 'search')}`);
    expect(lines).toContain('# {{ report }} = hits.tsv');
    expect(lines.at(-1)).toContain(`cat ${box.path('project', 'search', 'db.dmnd')} ${box.path('project', 'search')}/notes.txt scratch.tmp`);
  });
});
