import { existsSync } from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Sandbox } from './harness.js';
import { describeOn } from './schedulers.js';

/**
 * What a cluster would refuse is refused before the run is recorded (exit 2), with what the
 * scheduler said and what to change. Runs against the real single-node schedulers.
 */
for (const backend of ['slurm', 'sge'] as const) {
  describeOn(backend, `bad input on ${backend}`, () => {
    let box: Sandbox;
    beforeEach(() => (box = new Sandbox()));
    afterEach(() => box?.cleanup());

    async function refused(lines: string[], expected: RegExp[], env: NodeJS.ProcessEnv = {}) {
      box.write('job.yaml', `command: echo {{ item }}\ntasks:\n  each: [1, 2]\n${lines.join('\n')}\n`);
      const result = await box.run(['run', 'job.yaml', '--backend', backend], { env });
      expect(result.code, result.stderr).toBe(2);
      const message = result.stderr.trim();
      expect(message.split('\n')).toHaveLength(1);
      for (const pattern of expected) expect(message).toMatch(pattern);
      if (existsSync(box.path('.fanout', 'state.db'))) expect(box.query('SELECT id FROM runs')).toEqual([]);
    }

    if (backend === 'slurm') {
      it('an unknown partition names the ones there are', async () => {
        await refused(['slurm:', '  partition: nope'], [/no partition "nope"/, /debug/]);
      });
      it('a request the scheduler cannot satisfy quotes sbatch', async () => {
        await refused(['slurm:', '  constraint: nosuchfeature'], [/slurm refuses this job's first array: .*Invalid feature specification/, /change the job's resources/]);
      });
      it('an array size above MaxArraySize is refused', async () => {
        await refused(['cluster:', '  maxArraySize: 20000'], [/job\.yaml:\d+: cluster\.maxArraySize: .*at most 10001/]);
      });
    } else {
      it('an unknown queue names the ones there are', async () => {
        await refused(['sge:', '  queue: nope.q'], [/no queue "nope.q"/, /all\.q/]);
      });
      it('a request the scheduler cannot satisfy quotes qsub', async () => {
        await refused(['sge:', '  extra: ["-l nosuch=1"]'], [/sge refuses this job's first array: .*unknown resource "nosuch"/]);
      });
      it('an array size above max_aj_tasks is refused', async () => {
        await refused(['cluster:', '  maxArraySize: 100000'], [/cluster\.maxArraySize: .*at most 75000/]);
      });
    }

    it('memory above what any node has names the largest node', async () => {
      await refused(['resources:', '  memory: 100TB'], [/job\.yaml:\d+: resources\.memory: asks for .* but the largest node .* has/]);
    });

    it('a machine without the scheduler’s commands is told so', async () => {
      // A PATH with none of the scheduler's commands (node itself is started by its full path).
      await refused([], [new RegExp(`needs \`${backend === 'slurm' ? 'scontrol' : 'qconf'}\`, which is not on PATH`)], { PATH: box.path('empty-bin') });
    });
  });
}
