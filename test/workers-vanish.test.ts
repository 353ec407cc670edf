import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { finished, Sandbox, waitFor } from './harness.js';

/**
 * Pull workers that vanish (SIGKILL: a spot reclaim, an OOM-killed node) while others go on,
 * over the embedded store (issue 13 items 3 and 4). What a killed worker claimed ahead and never
 * started goes back to the queue at no cost; what it ran to the end is adopted from its result
 * record (the launcher outlives the worker and finishes the attempt); workers started with
 * `--until-empty` do not leave while such attempts can still come back.
 */
describe('pull workers that vanish', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  const worker = (...flags: string[]) => box.start(['worker', '--lease', '2s', '--scratch', box.path('scratch'), ...flags]);
  const status = async () => JSON.parse((await box.run(['status', '--json'])).stdout) as { state: string; counts: Record<string, number> };

  function job(lines: string[]): void {
    box.write('job.yaml', ['name: vanish', 'backend: workers', ...lines, ''].join('\n'));
  }

  it('a SIGKILLed worker costs its tasks nothing: what it claimed ahead goes back unstarted, and every task succeeds once', async () => {
    // No retry block: a task that fails once fails for good, so any cost would show.
    job(['command: sleep 0.2', 'tasks:', `  each: [${Array.from({ length: 30 }, (_, i) => i).join(', ')}]`]);
    expect((await box.run(['run', 'job.yaml', '--detach'])).code).toBe(0);
    const victim = worker('--cpus', '2');
    const survivor = worker('--cpus', '2', '--until-empty');
    const victimId = `%-${victim.pid}-%`;
    // Kill it while it holds attempts it claimed ahead of its room (short tasks are claimed ×4).
    await waitFor(
      () =>
        box.query(`SELECT 1 FROM attempts WHERE worker LIKE ? AND reason = 'ok'`, victimId).length > 0 &&
        box.query(`SELECT 1 FROM attempts WHERE worker LIKE ? AND state = 'running' AND started_at IS NULL`, victimId).length > 0,
      60_000,
      'the victim to hold attempts claimed ahead',
    );
    victim.kill('SIGKILL');
    await finished(victim);

    const done = await finished(survivor, 180_000);
    expect(done.code, done.stderr).toBe(0);
    expect(await status()).toMatchObject({ state: 'succeeded', counts: { succeeded: 30 } });
    // Each task ran to success once; what the victim never started is recorded as such and charged nothing.
    expect(box.query(`SELECT idx FROM attempts WHERE reason = 'ok' GROUP BY idx HAVING count(*) > 1`)).toEqual([]);
    const neverStarted = box.query<{ idx: number }>(`SELECT idx FROM attempts WHERE reason = 'lost' AND started_at IS NULL`);
    expect(neverStarted.length).toBeGreaterThan(0);
    expect(box.query(`SELECT idx, reason, error FROM attempts WHERE reason <> 'ok' AND started_at IS NOT NULL`)).toEqual([]);
    for (const { idx } of neverStarted) {
      const [task] = box.query<{ attempts: number; retry_base: number }>(`SELECT attempts, retry_base FROM tasks WHERE idx = ?`, idx);
      expect(task!.attempts - task!.retry_base, `task ${idx}`).toBe(1);
    }
  }, 240_000);

  it('an --until-empty worker does not leave while a vanished worker holds a task: it takes it back, adopting the result the attempt left', async () => {
    job([`command: touch ${box.path('started')}; sleep 3; echo {{ item }} > {{ out }}/v`, 'tasks:', '  each: [only]']);
    expect((await box.run(['run', 'job.yaml', '--detach'])).code).toBe(0);
    const victim = worker();
    await waitFor(() => existsSync(box.path('started')), 60_000, 'the task to start');
    victim.kill('SIGKILL');
    await finished(victim);
    // The launcher outlives its worker and finishes the attempt: the case of the issue is a dead
    // worker whose attempt wrote its result record (a reaper that comes before the record takes
    // the attempt as lost, which the retry rules then run again).
    await waitFor(() => existsSync(box.path('.fanout/work/1/0.1/.fanout.result.json')), 60_000, 'the orphaned attempt to write its record');

    // Started now, it finds nothing to claim: the task is the dead worker's until its lease runs out.
    const late = await finished(worker('--until-empty'), 180_000);
    expect(late.code, late.stderr).toBe(0);
    expect(await status()).toMatchObject({ state: 'succeeded', counts: { succeeded: 1 } });
    // The attempt ran once, and its result was taken from its folder rather than run again.
    expect(box.query(`SELECT attempt, reason FROM attempts`)).toEqual([{ attempt: 1, reason: 'ok' }]);
    const listed = JSON.parse((await box.run(['workers', '--all', '--json'])).stdout) as Array<{ pid: number; state: string }>;
    expect(listed.find((w) => w.pid === victim.pid)?.state).toBe('lost');
  }, 240_000);
});
