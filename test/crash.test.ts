import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { finished, isRunning, Sandbox, taskPids, waitFor } from './harness.js';

/**
 * SIGKILL of the coordinator at any moment: finished tasks are not rerun, tasks that finished
 * while it was down are adopted, tasks cut off are retried as `lost`, and no half-written output
 * is taken for done. Every task appends its name to runs.log, so a rerun would show.
 */
describe('SIGKILL of the coordinator', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  const names = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`);
  function writeJob(count: number, seconds: number, gather = '') {
    box.write(
      'job.yaml',
      [
        `command: echo $$ > pid; sleep ${seconds}; echo {{ item }} >> ${box.path('runs.log')}; echo {{ item }} > {{ out }}/v`,
        'tasks:',
        `  each: [${names(count).join(', ')}]`,
        'concurrency: 2',
        gather,
        '',
      ].join('\n'),
    );
  }
  const doneAttempts = () => box.query<{ n: number }>(`SELECT COUNT(*) AS n FROM attempts WHERE state = 'done'`)[0]!.n;
  const runLog = () => (existsSync(box.path('runs.log')) ? readFileSync(box.path('runs.log'), 'utf8').trim().split('\n') : []);

  /**
   * Attempts that were running are adopted, not rerun. The one exception is an attempt recorded
   * but killed before it reached the launcher: it never ran (runs.log shows each task once), and
   * is retried as `lost`.
   */
  function expectOnlyUnstartedRetried() {
    const retried = box.query<{ idx: number }>(`SELECT idx FROM attempts WHERE attempt > 1`).map((a) => a.idx);
    const lostFirst = box.query<{ idx: number }>(`SELECT idx FROM attempts WHERE attempt = 1 AND reason = 'lost'`).map((a) => a.idx);
    expect(lostFirst).toEqual(expect.arrayContaining(retried));
  }

  function expectAllDoneOnce(count: number) {
    expect(runLog().sort()).toEqual(names(count).sort());
    for (const name of names(count)) expect(readFileSync(box.path('fanout-out/job', name, 'v'), 'utf8')).toBe(`${name}\n`);
  }

  it('adopts tasks that finished while it was down, and reruns nothing', async () => {
    writeJob(6, 0.6);
    const first = box.start(['run', 'job.yaml']);
    await waitFor(() => doneAttempts() >= 1, 20_000, 'a finished attempt');
    first.kill('SIGKILL');
    await finished(first);
    // The launcher outlives the coordinator and finishes what was running.
    await new Promise((r) => setTimeout(r, 1500));
    const second = await box.run(['run', 'job.yaml', '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ run: 1, state: 'succeeded', counts: { succeeded: 6 } });
    expectAllDoneOnce(6);
    expectOnlyUnstartedRetried();
  });

  it('keeps watching tasks still running under the old launcher when it comes back', async () => {
    writeJob(4, 1.5);
    const first = box.start(['run', 'job.yaml']);
    await waitFor(() => box.query(`SELECT idx FROM attempts`).length >= 2, 20_000, 'two launches');
    first.kill('SIGKILL');
    await finished(first);
    const second = await box.run(['run', 'job.yaml', '--json']);
    expect(second.code, second.stderr).toBe(0);
    expectAllDoneOnce(4);
    expectOnlyUnstartedRetried();
  });

  it('adopts each orphan under the launcher that started it, after coordinators died one after another', async () => {
    // Each task holds until the test opens its gate: t0 outlives two coordinators, t1 ends once its own died.
    box.write(
      'job.yaml',
      [
        `command: echo {{ item }} >> ${box.path('runs.log')}; while [ ! -e ${box.path('gate')}-{{ item }} ]; do sleep 0.2; done; echo {{ item }} > {{ out }}/v`,
        'tasks:',
        '  each: [t0, t1]',
        '',
      ].join('\n'),
    );
    // The first coordinator starts t0 under its launcher A, and dies.
    const first = box.start(['run', 'job.yaml', '--concurrency', '1']);
    await waitFor(() => runLog().includes('t0'), 30_000, 't0 to start under the first launcher');
    first.kill('SIGKILL');
    await finished(first);
    // The second adopts t0, starts t1 under its own launcher B, and dies; B finishes t1 unwatched and exits.
    const second = box.start(['run', 'job.yaml', '--concurrency', '2']);
    await waitFor(() => runLog().includes('t1'), 30_000, 't1 to start under the second launcher');
    const launcherB = JSON.parse(box.query<{ launcher: string }>(`SELECT launcher FROM runs`)[0]!.launcher);
    second.kill('SIGKILL');
    await finished(second);
    box.write('gate-t1', '');
    await waitFor(() => !isRunning(launcherB.pid), 30_000, 'the second launcher to finish t1 and exit');
    // The third must watch t0 under launcher A (alive, still running it), not take it for lost
    // because the last launcher it knows of, B, is gone.
    const third = box.start(['run', 'job.yaml', '--json']);
    await waitFor(() => box.query<{ state: string }>(`SELECT state FROM attempts WHERE idx = 1 AND attempt = 1`)[0]?.state === 'done', 60_000, 't1 adopted');
    box.write('gate-t0', '');
    const result = await finished(third, 120_000);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ run: 1, state: 'succeeded', counts: { succeeded: 2 } });
    expectAllDoneOnce(2);
    expect(box.query(`SELECT idx, attempt, reason FROM attempts ORDER BY idx, attempt`)).toEqual([
      { idx: 0, attempt: 1, reason: 'ok' },
      { idx: 1, attempt: 1, reason: 'ok' },
    ]);
  });

  it('retries tasks cut off with everything killed as lost, without leaving a partial output', async () => {
    writeJob(3, 30);
    const first = box.start(['run', 'job.yaml']);
    await waitFor(() => box.query(`SELECT idx FROM attempts`).length >= 2, 20_000, 'two launches');
    const pids = await taskPids(box);
    const launcher = JSON.parse(box.query<{ launcher: string }>(`SELECT launcher FROM runs`)[0]!.launcher);
    // A machine crash, as far as fanout can tell: coordinator, launcher and tasks all gone.
    first.kill('SIGKILL');
    process.kill(launcher.pid, 'SIGKILL');
    for (const pid of pids) process.kill(-pid, 'SIGKILL');
    await finished(first);
    await waitFor(() => !isRunning(launcher.pid) && pids.every((pid) => !isRunning(pid)), 10_000, 'everything to die');
    expect(readdirSync(box.path('fanout-out/job')).filter((n) => !n.startsWith('.'))).toEqual([]);

    // The same job again resumes the run in place. Its retries sleep 30 s too: what matters is
    // what was recorded for the attempts cut off.
    const second = box.start(['run', 'job.yaml', '--json']);
    await waitFor(() => box.query(`SELECT idx FROM attempts WHERE reason = 'lost'`).length >= 2, 20_000, 'lost attempts');
    const lost = box.query<{ idx: number; attempt: number }>(`SELECT idx, attempt FROM attempts WHERE reason = 'lost' ORDER BY idx`);
    expect(lost.map((a) => a.attempt)).toEqual([1, 1]);
    await waitFor(() => box.query(`SELECT idx FROM attempts WHERE attempt = 2`).length >= 1, 20_000, 'a retry');
    second.kill('SIGINT');
    await finished(second);
  });

  it('can be killed again and again at any moment and still ends with every task done exactly once', async () => {
    writeJob(12, 0.4);
    for (const delay of [150, 400, 700, 900, 1200]) {
      const run = box.start(['run', 'job.yaml']);
      await new Promise((r) => setTimeout(r, delay));
      run.kill('SIGKILL');
      await finished(run);
    }
    const last = await box.run(['run', 'job.yaml', '--json']);
    expect(last.code, last.stderr).toBe(0);
    const { counts } = JSON.parse(last.stdout);
    expect(counts.failed).toBe(0);
    expect(counts.succeeded + counts.skipped).toBe(12);
    expectAllDoneOnce(12);
  });

  /** A slow gather that logs its start and each step with its pid, so a second gather would show. */
  const SLOW_GATHER = (log: string) =>
    `gather: echo "start $$" >> ${log}; for i in 1 2 3 4 5 6; do sleep 0.5; echo "step $$ $i" >> ${log}; done; for d in {{ outputs }}; do cat "$d/v"; done > all.txt`;
  const gatherLog = () => (existsSync(box.path('gather.log')) ? readFileSync(box.path('gather.log'), 'utf8').trim().split('\n') : []);

  it('adopts a gather cut off by the kill: the rerun watches it to its end instead of starting a second one', async () => {
    writeJob(2, 0.1, SLOW_GATHER(box.path('gather.log')));
    const first = box.start(['run', 'job.yaml']);
    await waitFor(() => gatherLog().length >= 2, 30_000, 'the gather to be under way');
    first.kill('SIGKILL');
    await finished(first);
    // The rerun finds the old gather running under the old coordinator's launcher, or just ended
    // (its record written): either way it is adopted, never started again.
    const second = await box.run(['run', 'job.yaml', '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ state: 'succeeded', gather: 'succeeded' });
    const log = gatherLog();
    const pids = new Set(log.map((line) => line.split(' ')[1]));
    expect(
      log.filter((line) => line.startsWith('start')),
      log.join('\n'),
    ).toHaveLength(1);
    expect(pids.size, log.join('\n')).toBe(1);
    expect(log.filter((line) => line.startsWith('step')).map((line) => line.split(' ')[2])).toEqual(['1', '2', '3', '4', '5', '6']);
    expect(box.query(`SELECT attempt, state, reason FROM gathers`)).toEqual([{ attempt: 1, state: 'done', reason: 'ok' }]);
    expect(readFileSync(box.path('fanout-out/job/all.txt'), 'utf8')).toBe('t0\nt1\n');
    expectAllDoneOnce(2);
  });

  it('runs the gather again, once, when the kill took its launcher and the gather with it', async () => {
    writeJob(2, 0.1, SLOW_GATHER(box.path('gather.log')));
    const first = box.start(['run', 'job.yaml']);
    await waitFor(() => gatherLog().length >= 2, 30_000, 'the gather to be under way');
    const launcher = JSON.parse(box.query<{ launcher: string }>(`SELECT launcher FROM gathers`)[0]!.launcher);
    const gatherPid = Number(gatherLog()[0]!.split(' ')[1]);
    first.kill('SIGKILL');
    process.kill(launcher.pid, 'SIGKILL');
    process.kill(-gatherPid, 'SIGKILL');
    await finished(first);
    await waitFor(() => !isRunning(launcher.pid) && !isRunning(gatherPid), 10_000, 'the launcher and the gather to die');
    const second = await box.run(['run', 'job.yaml', '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ state: 'succeeded', gather: 'succeeded' });
    expect(gatherLog().filter((line) => line.startsWith('start'))).toHaveLength(2);
    expect(box.query(`SELECT attempt, reason FROM gathers ORDER BY attempt`)).toEqual([
      { attempt: 1, reason: 'lost' },
      { attempt: 2, reason: 'ok' },
    ]);
    expectAllDoneOnce(2);
  });
});

describe('a launcher that dies under a live coordinator', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  it('reports its attempts as lost, so they are retried instead of waited on forever, though the job asks for no retries', async () => {
    // No retry block (retry.max 0): a lost attempt is not the task's fault and does not spend it.
    box.write(
      'job.yaml',
      [`command: echo $$ > pid; if [ "$FANOUT_ATTEMPT" = 1 ]; then sleep 30; fi; echo {{ item }} > {{ out }}/v`, 'tasks:', '  each: [a, b]', ''].join('\n'),
    );
    const run = box.start(['run', 'job.yaml', '--json']);
    await waitFor(() => box.query(`SELECT idx FROM attempts`).length === 2, 20_000, 'two launches');
    const pids = await taskPids(box);
    const launcher = JSON.parse(box.query<{ launcher: string }>(`SELECT launcher FROM runs`)[0]!.launcher);
    process.kill(launcher.pid, 'SIGKILL');
    const result = await finished(run, 30_000);
    for (const pid of pids) if (isRunning(pid)) process.kill(-pid, 'SIGKILL');
    expect(result.code, result.stderr).toBe(0);
    expect(box.query<{ reason: string }>('SELECT reason FROM attempts ORDER BY attempt, idx').map((a) => a.reason)).toEqual(['lost', 'lost', 'ok', 'ok']);
  });
});
