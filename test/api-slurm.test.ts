import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { Fanout, type TaskResult } from '../dist/index.js';
import { writeWorkModule } from './api-fixtures.js';
import { Sandbox } from './harness.js';
import { describeOn } from './schedulers.js';

/**
 * A map gives the same results on this machine and on a real SLURM for the same items, as
 * ngs_toolkit's docs asserted serial and distributed outputs equal. The worker process runs
 * with `node` by absolute path on the node: here the single-node SLURM of scripts/hpc.
 */

const SLOW = 240_000;

/** What must not depend on where a task ran: its name, state, value and error. */
function comparable(results: TaskResult[]): unknown[] {
  return results.map((r) => ({
    name: r.name,
    state: r.state,
    value: r.value,
    reason: r.record?.reason,
    error: r.error && { reason: r.error.reason, message: r.error.message, errorName: r.error.errorName },
  }));
}

describeOn('slurm', 'the TypeScript API on SLURM', () => {
  let box: Sandbox;
  let pollBefore: string | undefined;
  beforeAll(() => {
    pollBefore = process.env.FANOUT_POLL_MS;
    // Poll the scheduler fast: the test should not wait on the default 5 s rhythm.
    process.env.FANOUT_POLL_MS = '300';
  });
  afterAll(() => {
    if (pollBefore === undefined) delete process.env.FANOUT_POLL_MS;
    else process.env.FANOUT_POLL_MS = pollBefore;
  });
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  it(
    'map gives identical results locally and on SLURM',
    async () => {
      const module = writeWorkModule(box);
      const local = await Fanout.open({ home: box.path('local', '.fanout') });
      const slurm = await Fanout.open({ home: box.path('slurm', '.fanout'), backend: 'slurm' });
      try {
        const items = [{ n: 1, label: 'a b' }, { n: 7 }, { n: -3, label: 'q"uote' }];
        const onLocal = await local.map(module, 'double', items, { baseDir: box.path('local') });
        const onSlurm = await slurm.map(module, 'double', items, { baseDir: box.path('slurm') });
        expect(await onSlurm.wait()).toMatchObject({ state: 'succeeded', counts: { succeeded: 3 } });
        const [here, there] = [comparable(await onLocal.gather()), comparable(await onSlurm.gather())];
        expect(there).toEqual(here);
        // It went through SLURM: fanout's log of scheduler commands shows the array submitted.
        const commands = readFileSync(box.path('slurm', '.fanout', 'work', String(onSlurm.id), 'scheduler-commands.log'), 'utf8');
        expect(commands).toMatch(/: sbatch /);
        expect(there.map((r) => (r as { value: unknown }).value)).toEqual([
          { n: 2, label: 'a b' },
          { n: 14, label: null },
          { n: -6, label: 'q"uote' },
        ]);

        const failingLocal = await local.map(module, 'failOnOdd', [2, 3], { baseDir: box.path('local') });
        const failingSlurm = await slurm.map(module, 'failOnOdd', [2, 3], { baseDir: box.path('slurm') });
        const slurmResults = await failingSlurm.gather();
        expect(comparable(slurmResults)).toEqual(comparable(await failingLocal.gather()));
        expect(slurmResults[1]).toMatchObject({ state: 'failed', error: { message: 'odd item 3', errorName: 'RangeError' } });
        expect(slurmResults[1]!.error!.stack).toMatch(/at failOnOdd/);
      } finally {
        await local.close();
        await slurm.close();
      }
    },
    SLOW,
  );
});
