import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { finished, isRunning, Sandbox, taskPids, waitFor } from './harness.js';

describe('cancel and the run lock', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  const running = () => box.query(`SELECT idx FROM attempts WHERE state = 'running'`).length;
  function slowJob(trapTerm = false) {
    box.write(
      'job.yaml',
      [
        // The trap is set before the pid is written, so a test that waits for the pid knows it holds.
        `command: ${trapTerm ? "trap '' TERM; " : ''}echo $$ > pid; sleep 60`,
        'tasks:',
        '  each: [a, b, c, d]',
        'concurrency: 2',
        '',
      ].join('\n'),
    );
  }

  it('Ctrl-C once stops launching, terminates running tasks (cancelled) and exits 130', async () => {
    slowJob();
    const run = box.start(['run', 'job.yaml']);
    await waitFor(() => running() === 2, 20_000, 'two running tasks');
    const pids = await taskPids(box);
    run.kill('SIGINT');
    const result = await finished(run);
    expect(result.code).toBe(130);
    const status = JSON.parse((await box.run(['status', '--json'])).stdout);
    expect(status).toMatchObject({ state: 'cancelled', counts: { cancelled: 4, running: 0, pending: 0 } });
    expect(box.query<{ reason: string }>('SELECT reason FROM attempts').map((a) => a.reason)).toEqual(['cancelled', 'cancelled']);
    for (const pid of pids) expect(isRunning(pid)).toBe(false);
  });

  it('Ctrl-C twice kills tasks that ignore the polite request', async () => {
    slowJob(true);
    const run = box.start(['run', 'job.yaml', '--grace', '60s']);
    await waitFor(() => running() === 2, 20_000, 'two running tasks');
    await taskPids(box);
    run.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    expect(run.exitCode).toBeNull();
    const started = Date.now();
    run.kill('SIGINT');
    const result = await finished(run);
    expect(result.code).toBe(130);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(JSON.parse((await box.run(['status', '--json'])).stdout).state).toBe('cancelled');
  });

  it('fanout cancel from another shell stops the run through its coordinator', async () => {
    slowJob();
    const run = box.start(['run', 'job.yaml']);
    await waitFor(() => running() === 2, 20_000, 'two running tasks');
    const cancel = await box.run(['cancel']);
    expect(cancel.code, cancel.stderr).toBe(0);
    await finished(run);
    expect(JSON.parse((await box.run(['status', '--json'])).stdout)).toMatchObject({ state: 'cancelled', counts: { running: 0 } });
  });

  it('fanout cancel settles a run whose coordinator died, stopping what its launcher still runs', async () => {
    slowJob();
    const run = box.start(['run', 'job.yaml']);
    await waitFor(() => running() === 2, 20_000, 'two running tasks');
    const pids = await taskPids(box);
    run.kill('SIGKILL');
    await finished(run);
    const cancel = await box.run(['cancel', '1', '--home', '.fanout']);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(JSON.parse((await box.run(['status', '--json'])).stdout)).toMatchObject({ state: 'cancelled', counts: { running: 0, pending: 0 } });
    await waitFor(() => pids.every((pid) => !isRunning(pid)), 15_000, 'the tasks to stop');
  });

  it('a second coordinator on the same job is refused while the first runs', async () => {
    slowJob();
    const first = box.start(['run', 'job.yaml']);
    await waitFor(() => running() === 2, 20_000, 'two running tasks');
    const second = await box.run(['run', 'job.yaml']);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/already running under another fanout \(pid \d+/);
    expect(box.query('SELECT id FROM runs')).toHaveLength(1);
    first.kill('SIGINT');
    await finished(first);
  });
});
