import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { IGNORES_TERM, MARKER, containersLeft, containersRunning, describeWithPodman, expectRanInside, insideJob, OOM_RETRIES, OOM_THEN_FITS } from './containers.js';
import { finished, Sandbox, waitFor } from './harness.js';
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
          job([...OOM_THEN_FITS, ...OOM_RETRIES, ...container]);
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

      it(
        'a cancel stops the running containers: none is left (Grid Engine warns with SIGUSR2 before it kills)',
        async () => {
          job([`command: ${IGNORES_TERM}`, 'tasks:', '  each: [one, two]', ...container]);
          const running = box.start(['run', 'job.yaml'], { env: { FANOUT_POLL_MS: '300', FANOUT_BACKEND: backend } });
          await waitFor(() => containersRunning(box).length === 2, SLOW, 'both containers running');
          const cancel = await run(['cancel', 'job']);
          expect(cancel.code, cancel.stderr).toBe(0);
          const ended = await finished(running, SLOW);
          expect(ended.code).not.toBe(0);
          // The task ignores SIGTERM: only a stop sent to its container ends it.
          await waitFor(() => containersLeft(box).length === 0, 60_000, 'no container left');
        },
        SLOW,
      );

      it(
        'per: element runs the tasks packed into an element in one container, an oom among them still escalating',
        async () => {
          job([
            `command: if [ {{ item }} = hog ]; then head -c 150000000 /dev/zero | tail > /dev/null; fi && cat ${MARKER} > {{ out }}/marker && id -u > {{ out }}/uid`,
            'tasks:',
            '  each: [a, hog, b, c, d, e]',
            'cluster:',
            '  pack: 3',
            ...OOM_RETRIES,
            ...container,
            '  per: element',
          ]);
          const result = await run(['run', 'job.yaml']);
          expect(result.code, result.stderr).toBe(0);
          const byTask = box.query<{ name: string; reasons: string }>(
            "SELECT t.name AS name, group_concat(a.reason, ',') AS reasons FROM tasks t JOIN attempts a ON a.run_id = t.run_id AND a.idx = t.idx GROUP BY t.idx ORDER BY t.idx",
          );
          expect(byTask).toEqual([
            { name: 'a', reasons: 'ok' },
            { name: 'hog', reasons: 'oom,ok' },
            { name: 'b', reasons: 'ok' },
            { name: 'c', reasons: 'ok' },
            { name: 'd', reasons: 'ok' },
            { name: 'e', reasons: 'ok' },
          ]);
          for (const name of ['a', 'hog', 'b', 'c', 'd', 'e']) {
            expect(readFileSync(box.path('fanout-out', 'job', name, 'marker'), 'utf8'), name).toBe(`${tag}\n`);
            expect(Number(readFileSync(box.path('fanout-out', 'job', name, 'uid'), 'utf8')), name).toBe(process.getuid!());
          }
          // The first array's two elements each started one container, which ran the element runner.
          const arrays = box.path('.fanout', 'work', '1', 'arrays');
          const script = readFileSync(join(arrays, '1', 'script.sh'), 'utf8');
          expect(script).toMatch(new RegExp(`exec podman run .* ${tag.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\S*fanout-element\\.sh`));
          expect(
            readFileSync(join(arrays, '1', 'elements'), 'utf8')
              .trim()
              .split('\n')
              .map((line) => line.split(' ').length),
          ).toEqual([3, 3]);
          expect(containersLeft(box)).toEqual([]);
        },
        SLOW,
      );
    });
  }
});
