import { existsSync } from 'node:fs';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { finished, Sandbox } from './harness.js';
import { createBucket, describeWithS3, s3Endpoint, s3Env, S3_TEST_CREDENTIALS } from './services/s3.js';
import { describeOn } from './schedulers.js';

/**
 * `outputs:` catches a tool that failed but exited 0 (seqkit on a truncated gzip): a task that
 * leaves a declared output missing (or empty, when it must not be) fails with reason `exit`, its
 * stderr naming the outputs, and nothing of it is committed — on every runner.
 */
describe('declared outputs', { timeout: 240_000 }, () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  /** `good` writes everything; `hole` exits 0 without hits.tsv; `empty` leaves its log empty. */
  function job(extra: string[]): void {
    box.write(
      'job.yaml',
      [
        'name: hits',
        'command: |',
        '  if [ {{ item }} != hole ]; then echo hit > {{ out }}/hits.tsv; fi',
        '  if [ {{ item }} = empty ]; then : > {{ out }}/run.log; else echo done > {{ out }}/run.log; fi',
        'tasks:',
        '  each: [good, hole, empty]',
        'outputs:',
        '  - hits.tsv',
        '  - {path: "*.log", non_empty: true}',
        ...extra,
        '',
      ].join('\n'),
    );
  }

  async function expectChecked(env: Record<string, string> = {}): Promise<void> {
    const tasks = JSON.parse((await box.run(['tasks', '--json'], { env })).stdout) as Array<{ name: string; state: string; reason: string | null }>;
    expect(tasks.map((t) => [t.name, t.state, t.reason])).toEqual([
      ['good', 'succeeded', 'ok'],
      ['hole', 'failed', 'exit'],
      ['empty', 'failed', 'exit'],
    ]);
    expect((await box.run(['logs', 'hole', '--stderr'], { env })).stdout).toBe(
      'fanout: the command exited 0 but left no hits.tsv in its output folder (declared in outputs:)\n',
    );
    expect((await box.run(['logs', 'empty', '--stderr'], { env })).stdout).toBe('fanout: the command exited 0 but left empty: *.log (declared non_empty in outputs:)\n');
  }

  it('fails a task that exits 0 without them, on the local backend, and commits nothing of it', async () => {
    job([]);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(1);
    await expectChecked();
    expect(existsSync(box.path('fanout-out', 'hits', 'good', 'hits.tsv'))).toBe(true);
    expect(existsSync(box.path('fanout-out', 'hits', 'hole'))).toBe(false);
    expect(existsSync(box.path('fanout-out', 'hits', 'empty'))).toBe(false);
  });

  it('does the same on pull workers with a folder outdir', async () => {
    job(['backend: workers']);
    expect((await box.run(['run', 'job.yaml', '--detach'])).code).toBe(0);
    const worker = await finished(box.start(['worker', '--until-empty', '--scratch', box.path('scratch')]), 120_000);
    expect(worker.code, worker.stderr).toBe(0);
    await expectChecked();
    expect(existsSync(box.path('fanout-out', 'hits', 'hole'))).toBe(false);
  });

  it('refuses a declared output outside the task folder, naming the field', async () => {
    box.write('job.yaml', ['command: "true"', 'tasks:', '  each: [a]', 'outputs: [../elsewhere.tsv]', ''].join('\n'));
    const result = await box.run(['validate', 'job.yaml']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('outputs.0: "../elsewhere.tsv" is not inside the task\'s output folder');
  });

  describeOn('slurm', 'on SLURM', () => {
    it('does the same in a cluster element (the element runner commits only after the check)', async () => {
      job(['backend: slurm']);
      const env = { FANOUT_POLL_MS: '300', FANOUT_CONFIG: box.path('config.yaml'), FANOUT_SITE_CONFIG: box.path('site.yaml') };
      const result = await box.run(['run', 'job.yaml'], { env, timeoutMs: 220_000 });
      expect(result.code, result.stderr).toBe(1);
      await expectChecked(env);
      expect(existsSync(box.path('fanout-out', 'hits', 'good', 'hits.tsv'))).toBe(true);
      expect(existsSync(box.path('fanout-out', 'hits', 'hole'))).toBe(false);
    });
  });

  describeWithS3('with the outdir in S3', () => {
    let bucket: string;
    beforeAll(async () => (bucket = await createBucket(s3Endpoint())));

    it('does the same on pull workers, and uploads nothing of a failed task', async () => {
      const env = s3Env(s3Endpoint());
      job(['backend: workers', `workdir: s3://${bucket}/work`, `outdir: s3://${bucket}/out`]);
      expect((await box.run(['run', 'job.yaml', '--detach'], { env })).code).toBe(0);
      const worker = await finished(box.start(['worker', '--until-empty', '--scratch', box.path('scratch')], { env }), 120_000);
      expect(worker.code, worker.stderr).toBe(0);
      await expectChecked(env);
      const client = new S3Client({ endpoint: s3Endpoint(), region: 'us-east-1', forcePathStyle: true, credentials: S3_TEST_CREDENTIALS });
      const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'out/' }));
      client.destroy();
      const tasksWithObjects = new Set((listed.Contents ?? []).map((object) => object.Key!.split('/')[1]));
      expect([...tasksWithObjects]).toEqual(['good']);
    });
  });
});
