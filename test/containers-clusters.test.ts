import { afterEach, beforeEach, expect, it } from 'vitest';
import { IGNORES_TERM, containersLeft, describeWithPodman, expectRanInside, insideJob } from './containers.js';
import { Sandbox } from './harness.js';
import { describeOn } from './schedulers.js';

/**
 * Containers on the real single-node SLURM and Grid Engine, with real podman: the element runner
 * on the node starts each attempt's container. Runs poll fast here (FANOUT_POLL_MS).
 */
describeWithPodman('clusters', 'containers on the clusters', (tag) => {
  const SLOW = 240_000;

  for (const backend of ['slurm', 'sge'] as const) {
    describeOn(backend, `containers on ${backend}`, () => {
      let box: Sandbox;
      beforeEach(() => (box = new Sandbox()));
      afterEach(() => box.cleanup());

      const run = (args: string[]) => box.run(args, { env: { FANOUT_POLL_MS: '300', FANOUT_BACKEND: backend }, timeoutMs: SLOW });
      const job = (lines: string[]) => box.write('job.yaml', `${lines.join('\n')}\n`);
      const container = ['container:', `  image: ${tag}`, '  pull: never'];
      const attempts = () => box.query<{ attempt: number; reason: string }>('SELECT attempt, reason FROM attempts WHERE idx >= 0 ORDER BY idx, attempt');

      it(
        'runs 20 tasks in the image, as the user running fanout, with the FANOUT_* variables',
        async () => {
          box.write('job.yaml', insideJob(tag));
          const result = await run(['run', 'job.yaml', '--json']);
          expect(result.code, result.stderr).toBe(0);
          expect(JSON.parse(result.stdout)).toMatchObject({ state: 'succeeded', counts: { succeeded: 20 } });
          expectRanInside(box.path('fanout-out', 'inside'), tag);
          expect(containersLeft(box)).toEqual([]);
        },
        SLOW,
      );

      it(
        'records an oom inside the container as oom, and the escalated retry succeeds',
        async () => {
          job([
            'command: head -c 150000000 /dev/zero | tail > /dev/null',
            'tasks:',
            '  each: [hog]',
            'resources:',
            '  memory: 60MB',
            'retry:',
            '  max: 2',
            '  escalate:',
            '    memory: 4',
            ...container,
          ]);
          const result = await run(['run', 'job.yaml']);
          expect(attempts()).toEqual([
            { attempt: 1, reason: 'oom' },
            { attempt: 2, reason: 'ok' },
          ]);
          expect(result.code, result.stderr).toBe(0);
        },
        SLOW,
      );

      it(
        'a timeout stops the container: none is left',
        async () => {
          job([`command: ${IGNORES_TERM}`, 'tasks:', '  each: [slow]', 'resources:', '  time: 3s', ...container]);
          const result = await run(['run', 'job.yaml']);
          expect(result.code).toBe(1);
          expect(attempts()).toEqual([{ attempt: 1, reason: 'timeout' }]);
          expect(containersLeft(box)).toEqual([]);
        },
        SLOW,
      );
    });
  }
});
