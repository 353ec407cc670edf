import { existsSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { finished, Sandbox, waitFor, waitForAsync } from './harness.js';

/**
 * A run recorded `running` that no live process drives (its coordinator died; no pull worker is
 * alive) is shown as such by `status`, `runs` and their JSON, with the command that resumes it.
 * Seen: `status` said `running, 8m59s` after the coordinator's stdout pipe had closed.
 */
describe('a run nothing drives', { timeout: 400_000 }, () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => {
    // Let a task left waiting by a test end, so no process outlives it.
    writeFileSync(box.path('go'), '');
    box.cleanup();
  });

  /** One task that starts, writes `started`, and waits for the file `go`. */
  function waitingJob(extra: string[] = []): void {
    box.write(
      'job.yaml',
      ['name: waits', `command: touch ${box.path('started')}; while [ ! -e ${box.path('go')} ]; do sleep 0.2; done`, 'tasks:', '  each: [one]', ...extra, ''].join('\n'),
    );
  }

  const statusJson = async () => JSON.parse((await box.run(['status', '--json'])).stdout);

  it('push: says so once the coordinator is gone, and how to resume; the resume clears it', async () => {
    waitingJob();
    const coordinator = box.start(['run', 'job.yaml']);
    await waitFor(() => existsSync(box.path('started')), 120_000, 'the task to start');
    expect((await statusJson()).unattended).toBeNull();

    coordinator.kill('SIGKILL');
    await finished(coordinator);
    const resume = `fanout run ${box.path('job.yaml')}`;
    expect(await statusJson()).toMatchObject({ state: 'running', unattended: { why: expect.stringMatching(/^its coordinator \(pid \d+ on .+\) is gone$/), resume } });
    const status = await box.run(['status']);
    expect(status.stdout).toMatch(/^run 1 \(waits\): running \(unattended\), /);
    expect(status.stdout).toContain(`resume it with \`${resume}\``);
    const runs = await box.run(['runs']);
    expect(runs.stdout).toContain('running (unattended)');
    expect(runs.stdout).toContain(`run 1: nothing drives it (its coordinator (pid ${coordinator.pid} on`);
    expect(JSON.parse((await box.run(['runs', '--json'])).stdout)[0].unattended.resume).toBe(resume);

    writeFileSync(box.path('go'), '');
    const resumed = await box.run(['run', 'job.yaml']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await statusJson()).toMatchObject({ state: 'succeeded', unattended: null });
  });

  it('pull: says so while no worker is alive, and not while one is', async () => {
    waitingJob(['backend: workers']);
    expect((await box.run(['run', 'job.yaml', '--detach'])).code).toBe(0);
    expect((await statusJson()).unattended).toEqual({ why: 'no pull worker is alive to claim its tasks', resume: 'fanout worker (or fanout workers start --count N)' });

    const worker = box.start(['worker', '--until-empty', '--scratch', box.path('scratch')]);
    await waitFor(() => existsSync(box.path('started')), 120_000, 'the task to start');
    await waitForAsync(async () => (await statusJson()).unattended === null, 60_000, 'the worker to count as alive');
    writeFileSync(box.path('go'), '');
    expect((await finished(worker)).code).toBe(0);
    expect(await statusJson()).toMatchObject({ state: 'succeeded', unattended: null });
  });
});
