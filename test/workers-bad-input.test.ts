import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Sandbox } from './harness.js';
import { createDatabase, describeWithPostgres } from './services/postgres.js';
import { createBucket, describeWithS3, s3Endpoint, s3Env } from './services/s3.js';

/**
 * Each mistake with a shared store or object storage gets one clear line (exit 2), names no
 * secret, and leaves no run behind.
 */
describe('bad input: stores and object storage', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  const job = (lines: string[]) => box.write('job.yaml', ['name: remote', 'command: echo {{ item }}', 'tasks:', '  each: [1, 2]', ...lines, ''].join('\n'));
  const noRuns = async (env: NodeJS.ProcessEnv = {}) => expect(JSON.parse((await box.run(['runs', '--json'], { env })).stdout)).toEqual([]);

  it('an unreachable store: one line naming it without its password', async () => {
    job([]);
    const result = await box.run(['run', 'job.yaml', '--store', 'postgres://fanout:hunter2@127.0.0.1:1/fanout']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^fanout: cannot reach the store at postgres:\/\/fanout@127\.0\.0\.1:1\/fanout .*FANOUT_STORE/);
    expect(result.stderr).not.toContain('hunter2');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('`fanout backends` lists the workers backend with the store its workers would use, no password', async () => {
    const local = JSON.parse((await box.run(['backends', '--json'])).stdout) as Array<{ name: string; usable: boolean; detail: string }>;
    expect(local.find((r) => r.name === 'workers')).toMatchObject({ usable: true, detail: expect.stringMatching(/SQLite store, for workers on this machine/) });
    const shared = await box.run(['backends', '--json', '--store', 'postgres://fanout:hunter2@db.example.org:5432/fanout']);
    const workers = (JSON.parse(shared.stdout) as Array<{ name: string; detail: string }>).find((r) => r.name === 'workers')!;
    expect(workers.detail).toContain('postgres://fanout@db.example.org:5432/fanout');
    expect(shared.stdout).not.toContain('hunter2');
  });

  it('a store that is not a postgres:// URL', async () => {
    const result = await box.run(['runs', '--store', 'mysql://x/y']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/postgres:\/\//);
  });

  it('object storage with a backend that writes to folders', async () => {
    job(['workdir: s3://bucket/work']);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/job\.yaml:\d+: workdir: s3:\/\/bucket\/work is in object storage, which only the workers backend can use/);
    await noRuns();
  });

  it('gather_on: local with pull workers, which leave no process here to run it', async () => {
    job(['backend: workers', 'gather: cat */* > all', 'gather_on: local']);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/job\.yaml:\d+: gather_on: local runs the gather where `fanout run` runs, but on the workers backend .*remove `gather_on: local`/s);
    await noRuns();
  });

  it('an S3 endpoint nobody answers', async () => {
    job(['backend: workers', 'workdir: s3://bucket/work', 'outdir: s3://bucket/out']);
    const result = await box.run(['run', 'job.yaml'], {
      env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_REGION: 'us-east-1' },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/job\.yaml:\d+: workdir: cannot reach S3 at http:\/\/127\.0\.0\.1:1/);
    await noRuns();
  });

  describeWithS3('with a real S3 server', () => {
    let bucket: string;
    beforeAll(async () => (bucket = await createBucket(s3Endpoint())));

    it('a bucket that does not exist', async () => {
      job(['backend: workers', 'workdir: s3://no-such-bucket/work', 'outdir: s3://no-such-bucket/out']);
      const result = await box.run(['run', 'job.yaml'], { env: s3Env(s3Endpoint()) });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/workdir: bucket "no-such-bucket" does not exist/);
      await noRuns();
    });

    it('credentials S3 refuses, never printed', async () => {
      job(['backend: workers', `workdir: s3://${bucket}/work`, `outdir: s3://${bucket}/out`]);
      const env = { ...s3Env(s3Endpoint()), AWS_ACCESS_KEY_ID: 'WRONGKEY', AWS_SECRET_ACCESS_KEY: 'wrong-secret-value' };
      const result = await box.run(['run', 'job.yaml'], { env });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/S3 refused the credentials/);
      expect(result.stderr).not.toContain('wrong-secret-value');
      await noRuns();
    });

    it('an object-storage workdir with outputs left in a local folder', async () => {
      job(['backend: workers', `workdir: s3://${bucket}/work`]);
      const result = await box.run(['run', 'job.yaml'], { env: s3Env(s3Endpoint()) });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/outdir: .*set `outdir:` to an s3:\/\/bucket\/prefix URI too/);
    });
  });

  describeWithPostgres('with a real PostgreSQL', (adminUrl) => {
    let storeUrl: string;
    beforeAll(async () => (storeUrl = await createDatabase(adminUrl, 'fanout_bad_input')));

    it('a wrong password', async () => {
      const url = new URL(storeUrl);
      url.password = 'not-the-password';
      const result = await box.run(['runs', '--store', url.toString()]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/refused the credentials of user "fanout"/);
      expect(result.stderr).not.toContain('not-the-password');
    });

    it('a database that does not exist', async () => {
      const url = new URL(storeUrl);
      url.pathname = '/no_such_db';
      const result = await box.run(['runs', '--store', url.toString()]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/database "no_such_db" does not exist/);
    });

    it('the workers backend on a shared store needs a workdir every worker can reach', async () => {
      job(['backend: workers']);
      const result = await box.run(['run', 'job.yaml'], { env: { FANOUT_STORE: storeUrl } });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/job\.yaml:\d+: workdir: pull workers on other machines cannot read/);
      await noRuns({ FANOUT_STORE: storeUrl });
    });
  });
});
