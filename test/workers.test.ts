import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HOG } from './conformance.js';
import { finished, Sandbox, waitFor, waitForAsync } from './harness.js';
import { createBucket, describeWithS3, s3Endpoint, s3Env, S3_TEST_CREDENTIALS } from './services/s3.js';

/**
 * Pull workers over the embedded store: every process on this machine shares the home's SQLite
 * file, which is how `fanout workers start --backend local` is used. (The PostgreSQL + S3 case
 * is test/workers-e2e.test.ts; the claim itself is in the store conformance suite.)
 */
describe('pull workers', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  const worker = (...flags: string[]) => box.start(['worker', '--lease', '2s', '--scratch', box.path('scratch'), ...flags]);
  const status = async (run = '') =>
    JSON.parse((await box.run(['status', ...(run ? [run] : []), '--json'])).stdout) as { run: number; state: string; counts: Record<string, number> };

  function job(lines: string[]): void {
    box.write('job.yaml', ['name: queued', 'backend: workers', ...lines, ''].join('\n'));
  }

  it('enqueues and returns with --detach; a worker runs the tasks and the gather, and the run ends succeeded', async () => {
    job(['command: echo {{ item }} > {{ out }}/value', 'tasks:', '  each: [a, b, c]', 'gather: for o in {{ outputs }}; do cat "$o/value"; done > all.txt']);
    const queued = await box.run(['run', 'job.yaml', '--detach']);
    expect(queued.code, queued.stderr).toBe(0);
    expect(queued.stderr).toMatch(/goes on with the workers/);
    expect((await status()).counts.pending).toBe(3);

    const done = await finished(worker('--until-empty'));
    expect(done.code, done.stderr).toBe(0);
    expect(await status()).toMatchObject({ state: 'succeeded', counts: { succeeded: 3 } });
    expect(box.query<{ worker: string }>('SELECT DISTINCT worker FROM attempts').map((a) => a.worker)[0]).toMatch(/-\d+-[0-9a-f]{6}$/);
    expect(existsSync(box.path('fanout-out', 'queued', 'all.txt'))).toBe(true);
  });

  it('a watching `fanout run` ends with the run, however many workers there are', async () => {
    // Tasks of a second or more are claimed one at a time (no claiming ahead), so both workers get some.
    job(['command: sleep 1', 'tasks:', '  each: [1, 2, 3, 4, 5, 6]']);
    const watcher = box.start(['run', 'job.yaml']);
    const workers = [worker('--cpus', '1', '--max-idle', '2s'), worker('--cpus', '1', '--max-idle', '2s')];
    const watched = await finished(watcher);
    expect(watched.code, watched.stderr).toBe(0);
    expect(watched.stderr).toMatch(/succeeded: 6 succeeded/);
    for (const w of workers) {
      const exited = await finished(w);
      expect(exited.code, exited.stderr).toBe(0);
    }
    expect(new Set(box.query<{ worker: string }>('SELECT worker FROM attempts').map((a) => a.worker)).size).toBe(2);
  });

  it('an attempt past its memory is oom, and the worker that reports it asks the retry for more', async () => {
    job([
      `command: "${HOG.replace(/"/g, '\\"')}"`,
      'tasks:',
      '  each: [hog]',
      'resources:',
      '  memory: 128MiB',
      'retry:',
      '  max: 1',
      '  on: [oom]',
      '  escalate:',
      '    memory: 3',
    ]);
    await box.run(['run', 'job.yaml', '--detach']);
    await finished(worker('--until-empty'));
    expect(box.query('SELECT attempt, reason, memory FROM attempts ORDER BY attempt')).toEqual([
      { attempt: 1, reason: 'oom', memory: 128 * 2 ** 20 },
      { attempt: 2, reason: 'ok', memory: 3 * 128 * 2 ** 20 },
    ]);
  });

  it('a task that fails retry.max times is dead-lettered with its history; `retry --failed` requeues only it', async () => {
    job(['command: test {{ item }} != bad || test -e ../../../fixed', 'tasks:', '  each: [good, bad]', 'retry:', '  max: 1', '  on: [exit]']);
    await box.run(['run', 'job.yaml', '--detach']);
    await finished(worker('--until-empty'));
    expect(await status()).toMatchObject({ state: 'failed', counts: { succeeded: 1, failed: 1 } });
    const failed = JSON.parse((await box.run(['tasks', '--state', 'failed', '--json'])).stdout) as Array<{ name: string; attempts: number; reason: string }>;
    expect(failed).toEqual([expect.objectContaining({ name: 'bad', attempts: 2, reason: 'exit' })]);

    writeFileSync(box.path('.fanout', 'fixed'), '');
    const retried = await box.run(['retry', '--failed', '--detach']);
    expect(retried.code, retried.stderr).toBe(0);
    expect((await status()).counts).toMatchObject({ pending: 1, succeeded: 1 });
    await finished(worker('--until-empty'));
    expect(await status()).toMatchObject({ state: 'succeeded', counts: { succeeded: 2 } });
    expect(box.query('SELECT idx FROM attempts WHERE idx = 0')).toHaveLength(1);
  });

  it('SIGTERM lets the running task finish; SIGTERM twice hands it back, unpenalised', async () => {
    job(['command: sleep 2', 'tasks:', '  each: [x]']);
    await box.run(['run', 'job.yaml', '--detach']);
    const first = worker();
    await waitFor(() => box.query(`SELECT 1 FROM attempts WHERE state = 'running'`).length > 0, 20_000, 'a running attempt');
    first.kill('SIGTERM');
    expect((await finished(first)).code).toBe(0);
    expect(await status()).toMatchObject({ state: 'succeeded' });

    job(['command: sleep 30', 'tasks:', '  each: [y]', 'retry:', '  max: 0']);
    await box.run(['run', 'job.yaml', '--detach']);
    const second = worker();
    await waitFor(() => box.query(`SELECT 1 FROM attempts WHERE state = 'running'`).length > 0, 20_000, 'a running attempt');
    second.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    second.kill('SIGTERM');
    expect((await finished(second)).code).toBe(0);
    // Back in the queue, with retry.max 0 still unspent.
    expect((await status()).counts).toMatchObject({ pending: 1 });
  });

  it('a worker claiming ahead for short tasks hands back on SIGTERM the ones it had not started', async () => {
    job(['command: sleep 0.05', 'tasks:', '  each: [' + Array.from({ length: 120 }, (_, i) => i).join(', ') + ']']);
    await box.run(['run', 'job.yaml', '--detach']);
    const first = worker('--cpus', '2');
    await waitFor(() => box.query(`SELECT 1 FROM attempts WHERE reason = 'ok'`).length >= 40, 30_000, 'forty tasks done');
    first.kill('SIGTERM');
    expect((await finished(first)).code).toBe(0);
    expect(box.query(`SELECT 1 FROM attempts WHERE state = 'running'`)).toEqual([]);
    expect(box.query(`SELECT 1 FROM attempts WHERE error = 'stopped before it started'`).length).toBeGreaterThan(0);
    expect((await status()).counts).toMatchObject({ failed: 0, cancelled: 0, running: 0 });
    expect((await finished(worker('--until-empty'))).code).toBe(0);
    expect(await status()).toMatchObject({ state: 'succeeded', counts: { succeeded: 120 } });
    expect(box.query(`SELECT idx FROM attempts WHERE reason = 'ok' GROUP BY idx HAVING count(*) > 1`)).toEqual([]);
  });

  it('--lifetime hands running tasks back before the allocation ends; --max-idle stops an idle worker', async () => {
    job(['command: sleep 30', 'tasks:', '  each: [z]']);
    await box.run(['run', 'job.yaml', '--detach']);
    const started = Date.now();
    const retired = await finished(worker('--lifetime', '1s'));
    expect(retired.stderr).toMatch(/lifetime is over/);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect((await status()).counts).toMatchObject({ pending: 1 });
    await box.run(['cancel']);

    const idle = await finished(worker('--max-idle', '1s'));
    expect(idle.stderr).toMatch(/nothing to claim/);
  });

  it('a worker that vanishes loses its task after the lease; another worker runs it again, though the job asks for no retries', async () => {
    // No retry block: a lost attempt is not the task's fault, so it is retried without spending retry.max (0).
    job(['command: sleep 1', 'tasks:', '  each: [p]']);
    await box.run(['run', 'job.yaml', '--detach']);
    const victim = worker();
    await waitFor(() => box.query(`SELECT 1 FROM attempts WHERE state = 'running' AND started_at IS NOT NULL`).length > 0, 20_000, 'a started attempt');
    // The whole node goes (worker, launcher and task): with the launcher alive, the attempt would
    // end by itself and its record be adopted, which is not a loss.
    const lostNode = [victim.pid!, ...descendantsOf(victim.pid!)];
    for (const pid of lostNode) process.kill(pid, 'SIGKILL');
    await finished(victim);
    const done = await finished(worker('--max-idle', '4s'));
    expect(done.code, done.stderr).toBe(0);
    expect(box.query<{ reason: string }>('SELECT reason FROM attempts ORDER BY attempt').map((a) => a.reason)).toEqual(['lost', 'ok']);
    expect(await status()).toMatchObject({ state: 'succeeded' });
  });

  it('`fanout cancel` reaches the workers at their next heartbeat', async () => {
    job(['command: sleep 30', 'tasks:', '  each: [1, 2, 3]']);
    await box.run(['run', 'job.yaml', '--detach']);
    const w = worker('--cpus', '1', '--max-idle', '1s');
    await waitFor(() => box.query(`SELECT 1 FROM attempts WHERE state = 'running'`).length > 0, 20_000, 'a running attempt');
    const cancelled = await box.run(['cancel']);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect((await finished(w)).code).toBe(0);
    expect(await status()).toMatchObject({ state: 'cancelled', counts: { cancelled: 3 } });
  });

  it('`fanout workers start --backend local` launches workers that `fanout workers` lists and that stop when the queue is empty', async () => {
    job(['command: sleep 1', 'tasks:', '  each: [1, 2, 3, 4]']);
    await box.run(['run', 'job.yaml', '--detach']);
    const started = await box.run(['workers', 'start', '--count', '2']);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stderr).toMatch(/started 2 worker/);
    const listed = await waitForAsync(
      async () => {
        const workers = JSON.parse((await box.run(['workers', '--json'])).stdout) as Array<{ launchedBy: string; state: string }>;
        return workers.length === 2 && workers;
      },
      20_000,
      'two workers',
    );
    expect(listed[0]!.launchedBy).toMatch(/fanout workers start/);
    await waitForAsync(async () => (await status()).state === 'succeeded', 30_000, 'the run to succeed');
    await waitForAsync(async () => JSON.parse((await box.run(['workers', '--json'])).stdout).length === 0, 30_000, 'the workers to stop');
    const table = await box.run(['workers', '--all']);
    expect(table.stdout).toMatch(/WORKER\s+STATE/);
    expect(table.stdout).toMatch(/stopped/);
  });

  it('skip_if_outputs_exist skips tasks whose outputs are committed, with no cache entry (local backend)', async () => {
    box.write('job.yaml', 'name: once\ncommand: echo {{ item }} > {{ out }}/v\ntasks:\n  each: [a, b, c]\nskip_if_outputs_exist: true\n');
    expect((await box.run(['run', 'job.yaml'])).code).toBe(0);
    rmSync(box.path('.fanout'), { recursive: true });
    rmSync(box.path('fanout-out', 'once', 'b'), { recursive: true });
    const again = await box.run(['run', 'job.yaml', '--json']);
    expect(JSON.parse(again.stdout).counts).toMatchObject({ skipped: 2, succeeded: 1 });
  });

  describeWithS3('with outputs in S3', () => {
    let bucket: string;
    beforeAll(async () => (bucket = await createBucket(s3Endpoint())));

    it('skip_if_outputs_exist counts a task done only when its commit marker is there', async () => {
      const env = s3Env(s3Endpoint());
      job([
        'command: echo {{ item }} > {{ out }}/v',
        'tasks:',
        '  each: [a, b, c]',
        'skip_if_outputs_exist: true',
        `workdir: s3://${bucket}/work`,
        `outdir: s3://${bucket}/out`,
      ]);
      expect((await box.run(['run', 'job.yaml', '--detach'], { env })).code).toBe(0);
      expect((await finished(box.start(['worker', '--until-empty', '--scratch', box.path('scratch')], { env }))).code).toBe(0);
      expect(await statusIn(env)).toMatchObject({ state: 'succeeded', counts: { succeeded: 3 } });

      // As if b's upload had been cut off before its marker, and the store lost.
      const client = new S3Client({ endpoint: s3Endpoint(), region: 'us-east-1', forcePathStyle: true, credentials: S3_TEST_CREDENTIALS });
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'out/b/.fanout-committed.json' }));
      client.destroy();
      rmSync(box.path('.fanout'), { recursive: true });
      expect((await box.run(['run', 'job.yaml', '--detach'], { env })).code).toBe(0);
      expect((await statusIn(env)).counts).toMatchObject({ skipped: 2, pending: 1 });
    });

    it('a failed attempt leaves no object where its output would be; its logs are read from S3', async () => {
      const env = s3Env(s3Endpoint());
      job([
        'command: |',
        '  echo partial > {{ out }}/v; echo "went wrong: {{ item }}" >&2; exit 3',
        'tasks:',
        '  each: [broken]',
        `workdir: s3://${bucket}/w2`,
        `outdir: s3://${bucket}/out2`,
      ]);
      const queued = await box.run(['run', 'job.yaml', '--detach'], { env });
      expect(queued.code, queued.stderr).toBe(0);
      expect((await finished(box.start(['worker', '--until-empty', '--scratch', box.path('scratch')], { env }))).code).toBe(0);
      expect(await statusIn(env)).toMatchObject({ state: 'failed', counts: { failed: 1 } });
      const client = new S3Client({ endpoint: s3Endpoint(), region: 'us-east-1', forcePathStyle: true, credentials: S3_TEST_CREDENTIALS });
      const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'out2/' }));
      client.destroy();
      expect(listed.Contents ?? []).toEqual([]);
      const logs = await box.run(['logs', 'broken', '--stderr'], { env });
      expect(logs.stdout).toBe('went wrong: broken\n');
    });

    async function statusIn(env: Record<string, string>) {
      return JSON.parse((await box.run(['status', '--json'], { env })).stdout) as { state: string; counts: Record<string, number> };
    }
  });
});

/** Every process below `pid` (children, grandchildren, ...), from /proc. */
function descendantsOf(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The field after the parenthesised command name: state, then the parent's pid.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  for (let frontier = [pid]; frontier.length > 0;) {
    frontier = [...parentOf].filter(([, parent]) => frontier.includes(parent)).map(([child]) => child);
    found.push(...frontier);
  }
  return found;
}
