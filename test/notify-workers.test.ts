import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { finished, Sandbox, waitForAsync } from './harness.js';
import { createDatabase, describeWithPostgres } from './services/postgres.js';
import { WebhookReceiver } from './webhook-receiver.js';

/**
 * Alerts on the workers backend, state in PostgreSQL: no process drives the run, so whichever
 * one settles it (a worker, or the `fanout run` watching it) sends the alert. Several of them
 * try at once; the store's transition decides which one did, so each event is alerted once.
 */
describeWithPostgres('alerts on the workers backend', (adminUrl) => {
  let box: Sandbox;
  let env: Record<string, string>;
  let hook: WebhookReceiver;
  beforeAll(async () => {
    box = new Sandbox();
    env = { FANOUT_STORE: await createDatabase(adminUrl, 'fanout_notify_workers') };
  });
  afterEach(async () => hook?.close());

  async function rows<T>(sql: string): Promise<T[]> {
    const client = new pg.Client({ connectionString: env.FANOUT_STORE });
    await client.connect();
    try {
      return (await client.query(sql)).rows as T[];
    } finally {
      await client.end();
    }
  }
  afterAll(() => box.cleanup());

  /** Submit and watch with `fanout run`, and start `count` one-cpu workers once the run is recorded. */
  async function runWithWorkers(count: number): Promise<{ watcher: Awaited<ReturnType<typeof finished>>; workers: Array<Awaited<ReturnType<typeof finished>>> }> {
    const runsBefore = (JSON.parse((await box.run(['runs', '--json'], { env })).stdout) as unknown[]).length;
    const watching = box.start(['run', 'job.yaml'], { env });
    let watched: Awaited<ReturnType<typeof finished>> | undefined;
    void finished(watching).then((result) => (watched = result));
    await waitForAsync(
      async () => (JSON.parse((await box.run(['runs', '--json'], { env })).stdout) as unknown[]).length > runsBefore,
      30_000,
      'the run to be recorded',
    ).catch((error: Error) => {
      throw new Error(`${error.message}; fanout run said: ${watched?.stderr ?? '(still running)'}`);
    });
    const workers = Array.from({ length: count }, () =>
      box.start(['worker', '--cpus', '1', '--until-empty', '--lease', '5s', '--scratch', box.path('scratch')], { env }),
    );
    return { watcher: await finished(watching), workers: await Promise.all(workers.map((worker) => finished(worker))) };
  }

  it('sends exactly one `finished` alert, however many processes try to settle the run', async () => {
    hook = await WebhookReceiver.start();
    box.write(
      'job.yaml',
      [
        'name: queued-alerts',
        'backend: workers',
        // A folder every worker reaches (they all run on this machine).
        'workdir: shared-work',
        'command: sleep 0.2; echo {{ item }} > {{ out }}/value',
        'tasks:',
        `  each: [${Array.from({ length: 12 }, (_, i) => i).join(', ')}]`,
        'gather: cat */value > all.txt',
        'notify:',
        `  webhook: ${hook.url()}`,
        '',
      ].join('\n'),
    );
    const { watcher, workers } = await runWithWorkers(3);
    expect(watcher.code, watcher.stderr).toBe(0);
    for (const worker of workers) expect(worker.code, worker.stderr).toBe(0);

    expect(hook.received).toHaveLength(1);
    expect(hook.received[0]!.body).toMatchObject({
      event: 'finished',
      job: 'queued-alerts',
      backend: 'workers',
      state: 'succeeded',
      gather: 'succeeded',
      counts: { succeeded: 12, failed: 0 },
      failedTasks: [],
    });
  });

  it('sends `task_failed` once per task that failed for good, and one `failed`', async () => {
    hook = await WebhookReceiver.start();
    box.write(
      'job.yaml',
      [
        'name: queued-failures',
        'backend: workers',
        // A folder every worker reaches (they all run on this machine).
        'workdir: shared-work',
        'command: sleep 0.2; case {{ item }} in bad*) exit 5;; esac',
        'tasks:',
        '  each: [ok1, bad1, ok2, bad2, ok3, ok4]',
        'retry:',
        '  max: 1',
        '  on: [exit]',
        'notify:',
        `  webhook: ${hook.url()}`,
        '  on: [finished, failed, task_failed]',
        '',
      ].join('\n'),
    );
    const { watcher, workers } = await runWithWorkers(3);
    expect(watcher.code, watcher.stderr).toBe(1);
    for (const worker of workers) expect(worker.code, worker.stderr).toBe(0);

    const alerts = hook.delivered() as Array<{ event: string; task?: { name: string; attempts: number; exitCode: number } }>;
    expect(alerts.map((a) => a.event).sort()).toEqual(['failed', 'task_failed', 'task_failed']);
    expect(
      alerts
        .filter((a) => a.task)
        .map((a) => [a.task!.name, a.task!.attempts, a.task!.exitCode])
        .sort(),
    ).toEqual([
      ['bad1', 2, 5],
      ['bad2', 2, 5],
    ]);
    expect(alerts.find((a) => a.event === 'failed')).toMatchObject({
      state: 'failed',
      backend: 'workers',
      counts: { succeeded: 4, failed: 2 },
      failedTasks: [
        { name: 'bad1', attempts: 2, reason: 'exit', exitCode: 5 },
        { name: 'bad2', attempts: 2, reason: 'exit', exitCode: 5 },
      ],
    });
  });

  it('alerts a task lost with its killed worker once, though every process left may reap it', async () => {
    hook = await WebhookReceiver.start();
    box.write(
      'job.yaml',
      [
        'name: queued-lost',
        'backend: workers',
        'workdir: shared-work',
        'command: sleep 6',
        'tasks:',
        '  each: [doomed]',
        // Lost attempts are retried for free a few times by default; none here, so the first loss fails it.
        'retry:',
        '  platform_max: 0',
        'notify:',
        `  webhook: ${hook.url()}`,
        '  on: [failed, task_failed]',
        '',
      ].join('\n'),
    );
    const watching = box.start(['run', 'job.yaml'], { env });
    const doomed = box.start(['worker', '--lease', '2s', '--scratch', box.path('scratch')], { env });
    await waitForAsync(
      async () => (await rows(`SELECT 1 FROM attempts a JOIN runs r ON r.id = a.run_id WHERE r.job = 'queued-lost' AND a.state = 'running'`)).length > 0,
      30_000,
      'the task to run',
    );
    doomed.kill('SIGKILL');
    // Two more workers and the watching `fanout run` all reap expired leases.
    const reapers = [1, 2].map(() => box.start(['worker', '--lease', '2s', '--max-idle', '5s', '--scratch', box.path('scratch')], { env }));
    const watched = await finished(watching);
    expect(watched.code, watched.stderr).toBe(1);
    for (const reaper of reapers) expect((await finished(reaper)).code).toBe(0);

    const alerts = hook.delivered() as Array<{ event: string; task?: { name: string; reason: string; error: string } }>;
    expect(alerts.map((a) => a.event).sort()).toEqual(['failed', 'task_failed']);
    expect(alerts.find((a) => a.task)!.task).toMatchObject({ name: 'doomed', attempts: 1, reason: 'lost', error: expect.stringMatching(/stopped renewing its lease/) });
    expect(alerts.find((a) => a.event === 'failed')).toMatchObject({ counts: { failed: 1 }, failedTasks: [{ name: 'doomed', reason: 'lost' }] });
  });
});
