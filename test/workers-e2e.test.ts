import { cpSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { finished, Sandbox, waitForAsync } from './harness.js';
import { createDatabase, describeWithPostgres } from './services/postgres.js';
import { createBucket, describeWithS3, s3Endpoint, s3Env, S3_TEST_CREDENTIALS } from './services/s3.js';

const EXAMPLE = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'fasta-chunks');

/**
 * The end-to-end case: the FASTA scatter/gather example on two pull workers in separate
 * processes with separate folders and no path in common, state in PostgreSQL, everything else
 * (chunks, logs, result records, outputs) in S3. One worker is SIGKILLed mid-task.
 */
describeWithPostgres('pull workers with no shared filesystem', (adminUrl) => {
  describeWithS3('FASTA scatter/gather over PostgreSQL and S3', () => {
    let storeUrl: string;
    let bucket: string;
    let env: Record<string, string>;
    let db: pg.Client;
    const boxes: Sandbox[] = [];
    const box = () => {
      const made = new Sandbox();
      boxes.push(made);
      return made;
    };

    beforeAll(async () => {
      storeUrl = await createDatabase(adminUrl, 'fanout_workers_e2e');
      bucket = await createBucket(s3Endpoint());
      env = { ...s3Env(s3Endpoint()), FANOUT_STORE: storeUrl };
      db = new pg.Client({ connectionString: storeUrl });
      await db.connect();
    });
    afterAll(async () => {
      await db?.end();
      for (const made of boxes) made.cleanup();
    });

    async function rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
      return (await db.query(sql, params)).rows as T[];
    }

    it('does every chunk exactly once after a worker is killed, and gathers what a local run gathers', async () => {
      const reference = box();
      cpSync(EXAMPLE, reference.dir, { recursive: true });
      const local = await reference.run(['run', 'job.yaml']);
      expect(local.code, local.stderr).toBe(0);

      const submitter = box();
      cpSync(EXAMPLE, submitter.dir, { recursive: true });
      const example = readFileSync(join(EXAMPLE, 'job.yaml'), 'utf8');
      // Each chunk sleeps first, so that a worker is caught in the middle of one.
      submitter.write(
        'job.yaml',
        `${example.replace('command: |\n', 'command: |\n  sleep 1\n')}backend: workers\nworkdir: s3://${bucket}/work\noutdir: s3://${bucket}/out\n`,
      );
      const queued = await submitter.run(['run', 'job.yaml', '--detach'], { env });
      expect(queued.code, queued.stderr).toBe(0);
      const [run] = await rows<{ id: number }>(`SELECT id FROM runs ORDER BY id DESC LIMIT 1`);

      const first = box();
      const second = box();
      const victim = first.start(['worker', '--cpus', '2', '--lease', '2s', '--scratch', first.path('scratch')], { env });
      const survivor = second.start(['worker', '--cpus', '2', '--lease', '2s', '--scratch', second.path('scratch')], { env });

      // Kill the first worker while it holds a running attempt.
      await waitForAsync(
        async () => (await rows(`SELECT 1 FROM attempts WHERE state = 'running' AND worker LIKE $1`, [`%-${victim.pid}-%`])).length > 0,
        30_000,
        'the first worker to run a chunk',
      );
      victim.kill('SIGKILL');
      await finished(victim);

      await waitForAsync(
        async () => (await rows<{ state: string }>(`SELECT state FROM runs WHERE id = $1`, [run!.id]))[0]?.state !== 'running',
        90_000,
        'the run to end',
      );
      survivor.kill('SIGTERM');
      const survived = await finished(survivor);
      expect(survived.code, survived.stderr).toBe(0);

      const status = await submitter.run(['status', String(run!.id), '--json'], { env });
      expect(JSON.parse(status.stdout)).toMatchObject({ state: 'succeeded', counts: { succeeded: 8 } });
      const ok = await rows<{ idx: number; n: string }>(
        `SELECT idx, count(*) AS n FROM attempts WHERE run_id = $1 AND idx >= 0 AND reason = 'ok' GROUP BY idx ORDER BY idx`,
        [run!.id],
      );
      expect(ok.map((row) => [row.idx, Number(row.n)])).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((idx) => [idx, 1]));
      const lost = await rows(`SELECT 1 FROM attempts WHERE run_id = $1 AND reason = 'lost' AND worker LIKE $2`, [run!.id, `%-${victim.pid}-%`]);
      expect(lost.length).toBeGreaterThan(0);

      for (const file of ['gc.tsv', 'summary.txt']) {
        const expected = readFileSync(reference.path('fanout-out', 'fasta-chunks', file), 'utf8');
        expect(await objectText(`out/${file}`), file).toBe(expected);
      }
      // Logs and result records are in S3 too, and `fanout logs` reads them from there.
      const logs = await submitter.run(['logs', String(run!.id), 'gather', '--stderr'], { env });
      expect(logs.code, logs.stderr).toBe(0);
    }, 180_000);

    async function objectText(key: string): Promise<string> {
      const client = new S3Client({ endpoint: s3Endpoint(), region: 'us-east-1', forcePathStyle: true, credentials: S3_TEST_CREDENTIALS });
      try {
        const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return await object.Body!.transformToString();
      } finally {
        client.destroy();
      }
    }
  });
});
