import { existsSync, readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sandbox } from './harness.js';
import { expectRefused } from './refused.js';
import { closedPort, WebhookReceiver } from './webhook-receiver.js';

/**
 * Alerts (`notify:`) on the local backend: a real `fanout run` posts to a webhook on loopback
 * and runs a command; what they receive is checked against what the run did.
 */
describe('alerts', () => {
  let box: Sandbox;
  const receivers: WebhookReceiver[] = [];
  beforeEach(() => (box = new Sandbox()));
  afterEach(async () => {
    for (const receiver of receivers.splice(0)) await receiver.close();
    box.cleanup();
  });

  async function receiver(options: Parameters<typeof WebhookReceiver.start>[0] = {}): Promise<WebhookReceiver> {
    const started = await WebhookReceiver.start(options);
    receivers.push(started);
    return started;
  }

  function job(lines: string[]): void {
    box.write('job.yaml', ['name: alerting', ...lines, ''].join('\n'));
  }

  const alertLog = (run = 1) => readFileSync(box.path('.fanout', 'work', String(run), 'alerts.log'), 'utf8');

  it('posts one `finished` summary as JSON when every task and the gather succeeded', async () => {
    const hook = await receiver();
    job(['command: echo {{ item }} > {{ out }}/value', 'tasks:', '  each: [a, b, c]', 'gather: cat */value > all.txt', 'notify:', `  webhook: ${hook.url()}`]);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);

    // The command waited for the delivery before it exited: it is already there.
    expect(hook.received).toHaveLength(1);
    const [alert] = hook.received;
    expect(alert!.headers['content-type']).toBe('application/json');
    expect(alert!.body).toMatchObject({
      event: 'finished',
      run: 1,
      job: 'alerting',
      backend: 'local',
      state: 'succeeded',
      gather: 'succeeded',
      counts: { succeeded: 3, failed: 0, pending: 0, running: 0 },
      total: 3,
      failedTasks: [],
      failedTasksNotListed: 0,
    });
    const body = alert!.body as { startedAt: string; endedAt: string; durationMs: number };
    expect(Date.parse(body.endedAt) - Date.parse(body.startedAt)).toBe(body.durationMs);
    expect(body.durationMs).toBeGreaterThanOrEqual(0);
    expect(alertLog()).toMatch(/the finished alert of run 1 was delivered to the webhook at http:\/\/127\.0\.0\.1:\d+ \(try 1, 200\)/);
  });

  it('alerts `task_failed` once per task that failed for good, then `failed` with those tasks and their reasons', async () => {
    const hook = await receiver();
    job([
      'command: test {{ item }} = good || exit 3',
      'tasks:',
      '  each: [good, bad1, bad2]',
      'retry:',
      '  max: 1',
      '  on: [exit]',
      'notify:',
      `  webhook: ${hook.url()}`,
      '  on: [finished, failed, task_failed]',
    ]);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(1);

    const alerts = hook.delivered();
    expect(alerts.map((a) => a.event).sort()).toEqual(['failed', 'task_failed', 'task_failed']);
    // One run's alerts go out in the order things happened: the run's end comes last.
    expect(alerts.at(-1)!.event).toBe('failed');
    const taskAlerts = alerts.filter((a) => a.event === 'task_failed') as Array<{ task: { name: string } }>;
    expect(taskAlerts.sort((x, y) => x.task.name.localeCompare(y.task.name))).toEqual([
      { event: 'task_failed', run: 1, job: 'alerting', backend: 'local', task: { name: 'bad1', index: 1, attempts: 2, reason: 'exit', exitCode: 3, error: null } },
      { event: 'task_failed', run: 1, job: 'alerting', backend: 'local', task: { name: 'bad2', index: 2, attempts: 2, reason: 'exit', exitCode: 3, error: null } },
    ]);
    expect(alerts.at(-1)).toMatchObject({
      event: 'failed',
      state: 'failed',
      counts: { succeeded: 1, failed: 2 },
      failedTasks: [
        { name: 'bad1', index: 1, attempts: 2, reason: 'exit', exitCode: 3 },
        { name: 'bad2', index: 2, attempts: 2, reason: 'exit', exitCode: 3 },
      ],
      failedTasksNotListed: 0,
    });
  });

  it('lists at most 20 failed tasks and says how many more there are; a failed gather fails the run in the alert too', async () => {
    const hook = await receiver();
    job([
      'command: exit 1',
      'tasks:',
      `  each: [${Array.from({ length: 23 }, (_, i) => `t${String(i).padStart(2, '0')}`).join(', ')}]`,
      'notify:',
      `  webhook: ${hook.url()}`,
    ]);
    expect((await box.run(['run', 'job.yaml'])).code).toBe(1);
    const [failed] = hook.delivered() as Array<{ failedTasks: Array<{ name: string }>; failedTasksNotListed: number }>;
    expect(hook.delivered()).toHaveLength(1);
    expect(failed!.failedTasks.map((t) => t.name)).toEqual(Array.from({ length: 20 }, (_, i) => `t${String(i).padStart(2, '0')}`));
    expect(failed!.failedTasksNotListed).toBe(3);

    job(['command: "true"', 'tasks:', '  each: [x]', 'gather: exit 4', 'notify:', `  webhook: ${hook.url()}`]);
    expect((await box.run(['run', 'job.yaml'])).code).toBe(1);
    expect(hook.delivered()[1]).toMatchObject({ event: 'failed', run: 2, state: 'failed', gather: 'failed', counts: { succeeded: 1 }, failedTasks: [] });
  });

  it('does not alert on events it was not asked for', async () => {
    const hook = await receiver();
    job(['command: test {{ item }} = good', 'tasks:', '  each: [good, bad]', 'notify:', `  webhook: ${hook.url()}`, '  on: [finished]']);
    expect((await box.run(['run', 'job.yaml'])).code).toBe(1);
    expect(hook.received).toEqual([]);
    expect(existsSync(box.path('.fanout', 'work', '1', 'alerts.log'))).toBe(false);
  });

  it('retries a webhook that answers 500 twice, and delivers on the third try', async () => {
    const hook = await receiver({ answers: [500, 500] });
    job(['command: "true"', 'tasks:', '  each: [a]', 'notify:', `  webhook: ${hook.url()}`]);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    expect(hook.received.map((r) => r.answered)).toEqual([500, 500, 200]);
    expect(hook.received.map((r) => r.body.event)).toEqual(['finished', 'finished', 'finished']);
    expect(result.stderr).not.toMatch(/could not be delivered/);
    expect(alertLog()).toMatch(/delivered to the webhook at .* \(try 3, 200\)/);
  });

  it('logs a webhook nobody listens on, without failing the run or naming its secret path', async () => {
    const port = await closedPort();
    job(['command: "true"', 'tasks:', '  each: [a]', 'notify:', `  webhook: http://127.0.0.1:${port}/hooks/s3cr3t-token`]);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    // Three pauses (1 s, 2 s, 4 s) between four tries fit inside the 30 s an exiting fanout waits:
    // had they not, the message would say the alert was still being delivered (no timing asserted).
    const message = new RegExp(
      `the finished alert of run 1 could not be delivered to the webhook at http://127\\.0\\.0\\.1:${port} after 4 tries: it cannot be reached \\(ECONNREFUSED\\)`,
    );
    expect(result.stderr).toMatch(message);
    expect(alertLog()).toMatch(message);
    expect(result.stderr + alertLog()).not.toMatch(/s3cr3t/);
    expect(JSON.parse((await box.run(['status', '--json'])).stdout)).toMatchObject({ state: 'succeeded' });
  });

  it('stops waiting for a webhook that never answers after FANOUT_ALERT_WAIT, and the run stands', async () => {
    const hook = await receiver({ hang: true });
    job(['command: "true"', 'tasks:', '  each: [a]', 'notify:', `  webhook: ${hook.url()}`]);
    const result = await box.run(['run', 'job.yaml'], { env: { FANOUT_ALERT_WAIT: '2s' } });
    expect(result.code, result.stderr).toBe(0);
    expect(hook.received).toHaveLength(1);
    expect(result.stderr).toMatch(/1 alert\(s\) were still being delivered after 2s; stopping them/);
    expect(result.stderr).toMatch(/could not be delivered .* after 1 try: .*gave up: fanout was exiting/);
    // The wait cut the one try short (the messages above say so); its duration is not asserted, as a busy machine stretches it.
    expect(JSON.parse((await box.run(['status', '--json'])).stdout)).toMatchObject({ state: 'succeeded' });
  });

  it('runs `command` with the summary on stdin, in the job file folder, and logs a command that fails', async () => {
    job(['command: echo {{ item }}', 'tasks:', '  each: [a, b]', 'notify:', '  command: cat > "alert-$FANOUT_EVENT-$FANOUT_RUN.json"']);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(readFileSync(box.path('alert-finished-1.json'), 'utf8'))).toMatchObject({
      event: 'finished',
      run: 1,
      state: 'succeeded',
      counts: { succeeded: 2 },
    });
    expect(alertLog()).toMatch(/the finished alert of run 1 was handed to notify\.command/);

    job(['command: echo {{ item }}', 'tasks:', '  each: [c]', 'notify:', '  command: echo "no route to pager" >&2; exit 7']);
    const failing = await box.run(['run', 'job.yaml']);
    expect(failing.code, failing.stderr).toBe(0);
    expect(failing.stderr).toMatch(/notify\.command failed on the finished alert of run 2: it exited with 7; its stderr ends: no route to pager/);
    expect(alertLog(2)).toMatch(/exited with 7/);
  });
});

describe('bad notify fields', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  async function refused(notify: string[], expected: RegExp[]): Promise<void> {
    box.write('job.yaml', ['command: "true"', 'tasks:', '  each: [a]', 'notify:', ...notify, ''].join('\n'));
    await expectRefused(box, ['run', 'job.yaml'], expected);
  }

  it('a webhook that is not http or https', async () => {
    await refused(['  webhook: ftp://example.org/drop'], [/job\.yaml:5: notify\.webhook: "ftp:" is not a webhook scheme/, /http:\/\/ or https:\/\//, /notify\.command/]);
  });

  it('a webhook that is not a URL', async () => {
    await refused(['  webhook: hooks.example.org/fanout'], [/job\.yaml:5: notify\.webhook: "hooks\.example\.org\/fanout" is not a URL/, /https:\/\/hooks\.example\.org/]);
  });

  it('a webhook that is not text', async () => {
    await refused(['  webhook: 42'], [/job\.yaml:5: notify\.webhook: must be a string, not number 42/, /http:\/\/ or https:\/\//]);
  });

  it('neither a webhook nor a command', async () => {
    await refused(['  on: [failed]'], [/job\.yaml:5: notify: names neither a webhook nor a command/, /add `webhook:/]);
  });

  it('an event that does not exist', async () => {
    await refused(['  command: cat', '  on: [failed, done]'], [/job\.yaml:6: notify\.on\[1\]: must be one of "finished", "failed", "task_failed"/]);
  });

  it('a misspelt field', async () => {
    await refused(['  webhok: https://hooks.example.org/x'], [/job\.yaml:5: notify\.webhok: unknown field/, /did you mean "webhook"/]);
  });
});
