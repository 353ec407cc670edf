import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { containersLeft, containersRunning, describeWithPodman, expectRanInside, insideJob, MARKER, OOM_RETRIES, OOM_THEN_FITS } from './containers.js';
import { finished, Sandbox, waitFor } from './harness.js';
import { createDatabase, describeWithPostgres } from './services/postgres.js';
import { createBucket, describeWithS3, s3Endpoint, s3Env, S3_TEST_CREDENTIALS } from './services/s3.js';

/**
 * Containers on pull workers, with real podman: state in PostgreSQL, each worker's launcher
 * starts the attempts' containers in its own scratch folder; the run is queued with --detach and
 * the workers run it.
 */
describeWithPodman('workers', 'containers on pull workers', (tag) => {
  describeWithPostgres('containers on pull workers, state in PostgreSQL', (adminUrl) => {
    const SLOW = 180_000;
    let box: Sandbox;
    let env: Record<string, string>;
    let db: pg.Client;
    beforeEach(async () => {
      box = new Sandbox();
      const storeUrl = await createDatabase(adminUrl, 'fanout_containers_workers');
      env = { FANOUT_STORE: storeUrl };
      db = new pg.Client({ connectionString: storeUrl });
      await db.connect();
    });
    afterEach(async () => {
      await db.end();
      box.cleanup();
    });

    const worker = (...flags: string[]) => box.start(['worker', '--lease', '2s', '--scratch', box.path('scratch'), ...flags], { env });
    const queue = async () => {
      const queued = await box.run(['run', 'job.yaml', '--detach'], { env });
      expect(queued.code, queued.stderr).toBe(0);
    };
    const status = async () => JSON.parse((await box.run(['status', '--json'], { env })).stdout) as { state: string; counts: Record<string, number> };
    const attempts = async () =>
      (await db.query('SELECT attempt, reason FROM attempts WHERE idx >= 0 ORDER BY idx, attempt')).rows as Array<{ attempt: number; reason: string }>;

    it(
      'runs 20 tasks in the image, as the user running fanout, with the FANOUT_* variables',
      async () => {
        box.write('job.yaml', insideJob(tag, ['backend: workers', 'workdir: shared-work']));
        await queue();
        const done = await finished(worker('--cpus', '2', '--until-empty'), SLOW);
        expect(done.code, done.stderr).toBe(0);
        expect(await status()).toMatchObject({ state: 'succeeded', counts: { succeeded: 20 } });
        expectRanInside(box.path('fanout-out', 'inside'), tag);
        expect(containersLeft(box)).toEqual([]);
      },
      SLOW,
    );

    it(
      'records an oom inside the container as oom, and the escalated retry succeeds',
      async () => {
        box.write(
          'job.yaml',
          ['backend: workers', 'workdir: shared-work', ...OOM_THEN_FITS, ...OOM_RETRIES, 'container:', `  image: ${tag}`, '  pull: never', ''].join('\n'),
        );
        await queue();
        const done = await finished(worker('--until-empty'), SLOW);
        expect(done.code, done.stderr).toBe(0);
        expect(await attempts()).toEqual([
          { attempt: 1, reason: 'oom' },
          { attempt: 2, reason: 'ok' },
        ]);
        expect(await status()).toMatchObject({ state: 'succeeded' });
      },
      SLOW,
    );

    it('`fanout cancel` reaches the workers and stops their containers: none is left', async () => {
      box.write(
        'job.yaml',
        ['backend: workers', 'workdir: shared-work', 'command: sleep 60', 'tasks:', '  each: [a, b, c]', 'container:', `  image: ${tag}`, '  pull: never', ''].join('\n'),
      );
      await queue();
      const running = worker('--cpus', '2', '--max-idle', '1s');
      await waitFor(() => containersRunning(box).length === 2, 60_000, 'two running containers');
      const cancelled = await box.run(['cancel'], { env });
      expect(cancelled.code, cancelled.stderr).toBe(0);
      expect((await finished(running, SLOW)).code).toBe(0);
      expect(await status()).toMatchObject({ state: 'cancelled', counts: { cancelled: 3 } });
      expect(containersLeft(box)).toEqual([]);
    });

    describeWithS3('with a workdir and outdir in S3 (no shared disk)', () => {
      it(
        'mounts the chunk a worker staged in and its {{ out }}: the tool in the image reads one and writes the other',
        async () => {
          const bucket = await createBucket(s3Endpoint());
          const s3 = { ...env, ...s3Env(s3Endpoint()) };
          box.write('reads.fa', ['>r1', 'ACGT', '>r2', 'GGCC', '>r3', 'TTAA', '>r4', 'CCGG', ''].join('\n'));
          box.write(
            'job.yaml',
            [
              'backend: workers',
              `workdir: s3://${bucket}/work`,
              `outdir: s3://${bucket}/out`,
              `command: grep -c '>' {{ chunk }} > {{ out }}/records && cat ${MARKER} > {{ out }}/marker`,
              'tasks:',
              '  chunks: { file: reads.fa, count: 2 }',
              'container:',
              `  image: ${tag}`,
              '  pull: never',
              '',
            ].join('\n'),
          );
          const queued = await box.run(['run', 'job.yaml', '--detach'], { env: s3 });
          expect(queued.code, queued.stderr).toBe(0);
          const done = await finished(box.start(['worker', '--cpus', '2', '--until-empty', '--scratch', box.path('scratch')], { env: s3 }), SLOW);
          expect(done.code, done.stderr).toBe(0);
          const tasks = JSON.parse((await box.run(['tasks', '--json'], { env: s3 })).stdout) as Array<{ name: string; state: string }>;
          expect(tasks.map((task) => task.state)).toEqual(['succeeded', 'succeeded']);
          const client = new S3Client({ endpoint: s3Endpoint(), region: 'us-east-1', forcePathStyle: true, credentials: S3_TEST_CREDENTIALS });
          try {
            const text = async (key: string) => (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
            let records = 0;
            for (const task of tasks) {
              records += Number(await text(`out/${task.name}/records`));
              expect(await text(`out/${task.name}/marker`)).toBe(`${tag}\n`);
            }
            expect(records).toBe(4);
          } finally {
            client.destroy();
          }
          expect(containersLeft(box)).toEqual([]);
        },
        SLOW,
      );
    });
  });
});
