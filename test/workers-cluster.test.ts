import { afterEach, beforeEach, expect, it } from 'vitest';
import { Sandbox, waitForAsync } from './harness.js';
import { describeOn } from './schedulers.js';

/**
 * `fanout workers start --backend slurm|sge`: workers as one array job of the real scheduler
 * (what dask-jobqueue's `cluster.scale(N)` did); they run the queue dry and stop.
 */
for (const backend of ['slurm', 'sge'] as const) {
  describeOn(backend, `workers started as ${backend} jobs`, () => {
    let box: Sandbox;
    beforeEach(() => (box = new Sandbox()));
    afterEach(() => box.cleanup());

    const json = async <T>(args: string[]) => JSON.parse((await box.run([...args, '--json'])).stdout) as T;

    it('runs a queued run to the end, then the workers leave the queue', async () => {
      box.write('job.yaml', 'name: fleet\nbackend: workers\ncommand: echo {{ item }} > {{ out }}/v\ntasks:\n  each: [1, 2, 3, 4, 5, 6]\n');
      expect((await box.run(['run', 'job.yaml', '--detach'])).code).toBe(0);
      const started = await box.run(['workers', 'start', '--backend', backend, '--count', '2', '--cpus', '1', '--memory', '1G', '--time', '10m']);
      expect(started.code, started.stderr).toBe(0);
      expect(started.stderr).toMatch(new RegExp(`submitted 2 worker\\(s\\) as ${backend} job \\d+`));

      await waitForAsync(async () => (await json<{ state: string }>(['status'])).state === 'succeeded', 120_000, 'the run to succeed');
      const workers = await waitForAsync(
        async () => {
          const all = await json<Array<{ state: string; launchedBy: string }>>(['workers', '--all']);
          return all.length > 0 && all.every((w) => w.state === 'stopped') && all;
        },
        60_000,
        'the workers to stop',
      );
      expect(workers[0]!.launchedBy).toMatch(new RegExp(`^${backend} job \\d+\\.\\d+$`));
    }, 240_000);
  });
}
