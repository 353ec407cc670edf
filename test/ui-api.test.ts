import { networkInterfaces } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.js';
import { startUiServer, type UiServer } from '../src/ui/ui-server.js';
import { finished, Sandbox, waitFor, waitForAsync } from './harness.js';
import { createBucket, describeWithS3, s3Endpoint, s3Env } from './services/s3.js';

/**
 * The dashboard's HTTP API over a real store, filled by real runs of the CLI: the same shapes
 * as `--json`, pages, logs only from the run's own attempts, actions, and the token.
 */
describe('fanout ui: the HTTP API', () => {
  let box: Sandbox;
  let engine: Engine | undefined;
  let server: UiServer | undefined;
  beforeEach(() => (box = new Sandbox()));
  afterEach(async () => {
    await server?.close();
    await engine?.close();
    server = engine = undefined;
    box.cleanup();
  });

  async function serve(options: { host?: string; token?: string } = {}) {
    engine = await Engine.open({ home: box.path('.fanout') });
    server = await startUiServer({ engine, port: 0, eventPollMs: 100, ...options });
    return `http://127.0.0.1:${server.port}`;
  }

  /** A finished local run: three tasks succeed (printing their name), `bad` fails. */
  async function finishedRun(): Promise<void> {
    box.write(
      'job.yaml',
      ['name: mixed', 'command: echo "out {{item}}"; echo "err {{item}}" >&2; test {{item}} != bad', 'tasks:', '  each: [a, b, c, bad]', ''].join('\n'),
    );
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(1);
  }

  const json = async (response: Response) => ({ status: response.status, body: await response.json() });

  it('answers with the shapes of runs --json, status --json and tasks --json', async () => {
    await finishedRun();
    const base = await serve();
    const cliRuns = JSON.parse((await box.run(['runs', '--json'])).stdout);
    const cliStatus = JSON.parse((await box.run(['status', '--json'])).stdout);
    const cliTasks = JSON.parse((await box.run(['tasks', '--json'])).stdout);
    expect((await json(await fetch(`${base}/api/runs`))).body).toEqual(cliRuns);
    expect((await json(await fetch(`${base}/api/runs/${cliStatus.run}`))).body).toEqual(cliStatus);
    const page = (await json(await fetch(`${base}/api/runs/${cliStatus.run}/tasks`))).body;
    expect(page).toMatchObject({ total: 4, page: 0, size: 50 });
    expect(page.tasks.map(({ host, ...task }: any) => task)).toEqual(cliTasks);
    expect(page.tasks[0].host).toEqual(expect.any(String));

    const failed = (await json(await fetch(`${base}/api/runs/${cliStatus.run}/tasks?state=failed`))).body;
    expect(failed.tasks.map((t: any) => t.name)).toEqual(['bad']);
    const second = (await json(await fetch(`${base}/api/runs/${cliStatus.run}/tasks?sort=-name&size=2&page=1`))).body;
    expect(second).toMatchObject({ total: 4, page: 1, size: 2 });
    expect(second.tasks.map((t: any) => t.name)).toEqual(['b', 'a']);
    expect((await json(await fetch(`${base}/api/runs/${cliStatus.run}/tasks?q=BA`))).body.tasks.map((t: any) => t.name)).toEqual(['bad']);

    const bad = await json(await fetch(`${base}/api/runs/${cliStatus.run}/tasks?state=lost`));
    expect(bad).toEqual({ status: 400, body: { error: 'state=lost is not a task state', fix: 'use one of pending, running, succeeded, failed, skipped, cancelled' } });
    expect((await json(await fetch(`${base}/api/runs/${cliStatus.run}/tasks?size=100000`))).status).toBe(400);
    expect((await json(await fetch(`${base}/api/runs/999`))).status).toBe(404);
  });

  it('takes a job name wherever it takes a run id, as the CLI does (the latest run of that job)', async () => {
    await finishedRun();
    const base = await serve();
    const cliStatus = JSON.parse((await box.run(['status', 'mixed', '--json'])).stdout);
    expect((await json(await fetch(`${base}/api/runs/mixed`))).body).toEqual(cliStatus);
    expect((await json(await fetch(`${base}/api/runs/mixed/tasks?state=failed`))).body.tasks.map((t: any) => t.name)).toEqual(['bad']);
    const log = (await json(await fetch(`${base}/api/runs/mixed/tasks/bad/attempts/1/log`))).body;
    expect(log).toMatchObject({ text: 'out bad\n', found: true });
    expect(await json(await fetch(`${base}/api/runs/nosuchjob`))).toEqual({ status: 404, body: { error: 'no run "nosuchjob"', fix: 'GET /api/runs lists the runs' } });
  });

  it("serves a task's attempts and logs, tail and offsets, and only its own files", async () => {
    await finishedRun();
    const base = await serve();
    const runId = JSON.parse((await box.run(['status', '--json'])).stdout).run;
    const attempts = (await json(await fetch(`${base}/api/runs/${runId}/tasks/bad/attempts`))).body;
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ attempt: 1, state: 'done', reason: 'exit', exitCode: 1 });
    const stdout = (await json(await fetch(`${base}/api/runs/${runId}/tasks/bad/attempts/1/log`))).body;
    expect(stdout).toMatchObject({ text: 'out bad\n', offset: 0, nextOffset: 8, found: true, running: false });
    expect((await json(await fetch(`${base}/api/runs/${runId}/tasks/bad/attempts/1/log?stream=stderr&offset=4`))).body.text).toBe('bad\n');
    expect((await json(await fetch(`${base}/api/runs/${runId}/tasks/bad/attempts/1/log?offset=8`))).body).toMatchObject({ text: '', nextOffset: 8 });

    // Every way of naming another file is a name the store does not know, or a refused parameter.
    box.write('secret.txt', 'do not serve me\n');
    const probes = [
      `/api/runs/${runId}/tasks/..%2F..%2Fsecret.txt/attempts/1/log`,
      `/api/runs/${runId}/tasks/bad/attempts/1/log?stream=..%2F..%2F..%2Fsecret.txt`,
      `/api/runs/${runId}/tasks/bad/attempts/1/log?stream=%2Fetc%2Fpasswd`,
      `/api/runs/${runId}/tasks/bad/attempts/..%2F1/log`,
      `/api/runs/${runId}/tasks/bad/attempts/0/log`,
      `/api/runs/${runId}/tasks/bad/attempts/1/log?offset=-5`,
      `/api/runs/${runId}/tasks/bad/attempts/1/../../../../secret.txt`,
      `/api/runs/${runId}/tasks/%2E%2E/attempts/1/log`,
      `/../../secret.txt`,
      `/app.js/../../secret.txt`,
      `/%2e%2e/%2e%2e/secret.txt`,
    ];
    for (const probe of probes) {
      const response = await fetch(`${base}${probe}`);
      const text = await response.text();
      expect([400, 404], probe).toContain(response.status);
      expect(text, probe).not.toContain('do not serve me');
      expect(text, probe).not.toContain('root:');
    }
  });

  it('pushes status events when counts change, and retries failed tasks and cancels runs by POST', async () => {
    box.write(
      'job.yaml',
      [
        'name: steer',
        // `flaky` fails until the file `fixed` exists; `slow` waits for `go`.
        'command: if [ {{item}} = flaky ]; then test -e "$FIXED"; elif [ {{item}} = slow ]; then while [ ! -e "$GO" ]; do sleep 0.1; done; fi',
        'tasks:',
        '  each: [flaky, slow]',
        '',
      ].join('\n'),
    );
    const env = { FIXED: box.path('fixed'), GO: box.path('go') };
    const run = box.start(['run', 'job.yaml'], { env });
    process.env.FIXED = env.FIXED;
    process.env.GO = env.GO;
    try {
      const base = await serve();
      await waitForAsync(async () => (await json(await fetch(`${base}/api/runs`))).body.length === 1, 20_000, 'the run to be recorded');
      const runId = (await json(await fetch(`${base}/api/runs`))).body[0].run;

      const seen: any[] = [];
      const controller = new AbortController();
      const events = statusEvents(`${base}/api/runs/${runId}/events`, controller.signal, seen);
      await waitFor(() => seen.some((s) => s.counts.failed === 1 && s.counts.running === 1), 20_000, 'an event with flaky failed and slow running');
      box.write('go', '');
      await finished(run);
      await waitFor(() => seen.some((s) => s.state === 'failed' && s.counts.succeeded === 1), 20_000, 'an event with the run failed');
      // Each event is a change: no two in a row are the same.
      for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toEqual(seen[i - 1]);

      // Retry the failed task: this server drives it, and it now succeeds.
      box.write('fixed', '');
      const retried = await json(await fetch(`${base}/api/runs/${runId}/retry`, { method: 'POST' }));
      expect(retried).toEqual({ status: 202, body: { run: runId, action: 'retry', outcome: 'retrying' } });
      await waitFor(() => seen.some((s) => s.state === 'succeeded' && s.counts.succeeded === 2), 20_000, 'the retried run to succeed');
      const again = await json(await fetch(`${base}/api/runs/${runId}/retry`, { method: 'POST' }));
      expect(again).toEqual({ status: 409, body: { error: `run ${runId} has no failed tasks to retry`, fix: null } });
      expect((await json(await fetch(`${base}/api/runs/${runId}/retry`))).status).toBe(405);
      expect((await json(await fetch(`${base}/api/runs/${runId}/gather`, { method: 'POST' }))).body.error).toBe('job steer has no gather');
      controller.abort();
      await events;
    } finally {
      delete process.env.FIXED;
      delete process.env.GO;
    }
  });

  it('gives every page watching a run its current status at once, each change once', async () => {
    await finishedRun();
    const base = await serve();
    const status = (await json(await fetch(`${base}/api/runs/1`))).body;
    const controller = new AbortController();
    const first: unknown[] = [];
    const second: unknown[] = [];
    const streams = [statusEvents(`${base}/api/runs/1/events`, controller.signal, first)];
    await waitFor(() => first.length === 1, 10_000, 'the first page to get the status');
    streams.push(statusEvents(`${base}/api/runs/1/events`, controller.signal, second));
    await waitFor(() => second.length === 1, 10_000, 'the second page to get the status');
    // Nothing changes: several polls later, no more events.
    await new Promise((r) => setTimeout(r, 500));
    expect(first).toEqual([status]);
    expect(second).toEqual([status]);
    controller.abort();
    await Promise.all(streams);
  });

  it('cancels a running run through its coordinator', async () => {
    box.write('job.yaml', ['name: long', 'command: sleep 60', 'tasks:', '  each: [a, b]', ''].join('\n'));
    const run = box.start(['run', 'job.yaml']);
    const base = await serve();
    const status = await waitForAsync(
      async () => {
        const runs = (await json(await fetch(`${base}/api/runs`))).body;
        return runs[0]?.counts.running === 2 && runs[0];
      },
      20_000,
      'two running tasks',
    );
    const cancelled = await json(await fetch(`${base}/api/runs/${status.run}/cancel`, { method: 'POST' }));
    expect(cancelled).toEqual({ status: 202, body: { run: status.run, action: 'cancel', outcome: 'signalled' } });
    await finished(run);
    expect((await json(await fetch(`${base}/api/runs/${status.run}`))).body).toMatchObject({ state: 'cancelled', counts: { cancelled: 2 } });
  });

  describe('the token', () => {
    it('is required off loopback, made up when not given, and refused when wrong, on every path', async () => {
      await finishedRun();
      engine = await Engine.open({ home: box.path('.fanout') });
      // This machine's own address, off loopback, so no other test's server on 127.0.0.1 answers instead.
      const address =
        Object.values(networkInterfaces())
          .flat()
          .find((a) => a && a.family === 'IPv4' && !a.internal)?.address ?? '0.0.0.0';
      server = await startUiServer({ engine, host: address, port: 0, eventPollMs: 100 });
      const token = server.token!;
      expect(token).toMatch(/^[\w-]{32}$/);
      expect(server.url).toBe(`http://${address}:${server.port}/?token=${token}`);
      const base = `http://${address === '0.0.0.0' ? '127.0.0.1' : address}:${server.port}`;
      // One character off (a token that ends in `x` must not be 'corrupted' into itself).
      const wrongToken = `${token.slice(0, -1)}${token.endsWith('x') ? 'y' : 'x'}`;
      for (const path of ['/', '/app.js', '/api/runs', '/api/runs/1', '/api/runs/1/tasks', '/api/runs/1/events', '/api/runs/1/tasks/bad/attempts/1/log']) {
        const none = await fetch(`${base}${path}`);
        expect(none.status, path).toBe(401);
        expect(await none.json()).toEqual({ error: 'a token is required: open the URL fanout ui printed, or send Authorization: Bearer <token>' });
        const wrong = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${wrongToken}` } });
        expect(wrong.status, path).toBe(401);
        expect(await wrong.json()).toEqual({ error: 'wrong token' });
        const right = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
        expect(right.status, path).toBe(200);
        await right.body?.cancel();
      }
      for (const action of ['cancel', 'retry', 'gather']) {
        expect((await fetch(`${base}/api/runs/1/${action}`, { method: 'POST' })).status).toBe(401);
        expect((await fetch(`${base}/api/runs/1/${action}`, { method: 'POST', headers: { authorization: 'Bearer nope' } })).status).toBe(401);
      }
      // A wrong ?token= sets nothing; the right one sets the cookie and leaves the address bar clean.
      const guessed = await fetch(`${base}/?token=nope`, { redirect: 'manual' });
      expect(guessed.status).toBe(401);
      expect(guessed.headers.get('set-cookie')).toBeNull();
      const opened = await fetch(`${base}/?token=${token}`, { redirect: 'manual' });
      expect(opened.status).toBe(303);
      expect(opened.headers.get('location')).toBe('/');
      const cookie = opened.headers.get('set-cookie')!;
      expect(cookie).toBe(`fanout_ui_token=${token}; Path=/; HttpOnly; SameSite=Strict`);
      const withCookie = await fetch(`${base}/api/runs`, { headers: { cookie: cookie.split(';')[0]! } });
      expect(withCookie.status).toBe(200);
      expect((await fetch(`${base}/api/runs`, { headers: { cookie: 'fanout_ui_token=stale' } })).status).toBe(401);
    });

    it('is taken from FANOUT_UI_TOKEN and printed once in the URL by fanout ui', async () => {
      await finishedRun();
      const ui = box.start(['ui', '--host', '0.0.0.0', '--port', '0'], { env: { FANOUT_UI_TOKEN: 'sesame-0123456789' } });
      let printed = '';
      ui.stdout!.on('data', (chunk) => (printed += chunk));
      const url = await waitFor(() => /fanout ui: (http:\S+)/.exec(printed)?.[1], 20_000, 'the URL');
      expect(url).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/\?token=sesame-0123456789$/);
      const port = new URL(url).port;
      expect((await fetch(`http://127.0.0.1:${port}/api/runs`)).status).toBe(401);
      expect((await fetch(`http://127.0.0.1:${port}/api/runs`, { headers: { authorization: 'Bearer sesame-0123456789' } })).status).toBe(200);
      ui.kill('SIGTERM');
      const result = await finished(ui);
      expect(result.code).toBe(0);
      expect(result.stdout.match(/sesame/g)).toHaveLength(1);
    });

    it('on loopback needs none, but refuses a Host that is not loopback (DNS rebinding)', async () => {
      const base = await serve();
      expect(server!.token).toBeNull();
      expect((await fetch(`${base}/api/runs`)).status).toBe(200);
      const rebound = await new Promise<number>((resolve, reject) => {
        import('node:http')
          .then(({ request }) =>
            request(`${base}/api/runs`, { headers: { host: 'evil.example:80' } }, (response) => {
              response.resume();
              resolve(response.statusCode!);
            })
              .on('error', reject)
              .end(),
          )
          .catch(reject);
      });
      expect(rebound).toBe(403);
    });

    it("refuses an action posted from another site's page (no cross-site request forgery)", async () => {
      box.write('job.yaml', ['name: long', 'command: sleep 60', 'tasks:', '  each: [a]', ''].join('\n'));
      const run = box.start(['run', 'job.yaml']);
      const base = await serve();
      await waitForAsync(async () => (await json(await fetch(`${base}/api/runs/1`))).body.counts?.running === 1, 20_000, 'a running task');
      const forged = await json(await fetch(`${base}/api/runs/1/cancel`, { method: 'POST', headers: { origin: 'https://evil.example' } }));
      expect(forged).toEqual({ status: 403, body: { error: "actions are taken only from the dashboard's own page, not from https://evil.example" } });
      expect((await json(await fetch(`${base}/api/runs/1`))).body.state).toBe('running');
      const own = await json(await fetch(`${base}/api/runs/1/cancel`, { method: 'POST', headers: { origin: base } }));
      expect(own).toMatchObject({ status: 202, body: { outcome: 'signalled' } });
      await finished(run);
    });
  });

  it('follows the run through the store as workers in other processes run it, and requeues failed tasks for them', async () => {
    box.write(
      'job.yaml',
      ['name: pulled', 'backend: workers', 'command: echo from {{item}}; sleep 1; test {{item}} != b || test -e "$FIXED"', 'tasks:', '  each: [a, b, c]', ''].join('\n'),
    );
    const queued = await box.run(['run', 'job.yaml', '--detach']);
    expect(queued.code, queued.stderr).toBe(0);
    const base = await serve();

    const seen: Array<{ state: string; counts: Record<string, number> }> = [];
    const controller = new AbortController();
    const events = statusEvents(`${base}/api/runs/1/events`, controller.signal, seen);
    await waitFor(() => seen.some((s) => s.counts.pending === 3), 20_000, 'the queued run');

    const env = { FIXED: box.path('fixed') };
    const worker = () => box.start(['worker', '--cpus', '1', '--until-empty', '--scratch', box.path('scratch')], { env });
    const first = await finished(worker());
    expect(first.code, first.stderr).toBe(0);
    await waitFor(() => seen.some((s) => s.state === 'failed'), 20_000, 'the run to end failed');
    // One task at a time: the page saw each one running, and the counts grow one by one.
    expect(seen.some((s) => s.counts.running === 1 && s.counts.pending === 2)).toBe(true);
    expect(seen.at(-1)!.counts).toMatchObject({ succeeded: 2, failed: 1 });
    const log = await (await fetch(`${base}/api/runs/1/tasks/b/attempts/1/log`)).json();
    expect(log).toMatchObject({ text: 'from b\n', found: true });

    box.write('fixed', '');
    const retried = await (await fetch(`${base}/api/runs/1/retry`, { method: 'POST' })).json();
    expect(retried).toEqual({ run: 1, action: 'retry', outcome: 'requeued' });
    await waitFor(() => seen.at(-1)!.state === 'running' && seen.at(-1)!.counts.pending === 1, 20_000, 'the task requeued');
    expect((await finished(worker())).code).toBe(0);
    await waitFor(() => seen.at(-1)!.state === 'succeeded', 20_000, 'the run to succeed');
    controller.abort();
    await events;
  });
});

describe('fanout run --ui', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  it('serves the dashboard while the run goes, and its cancel stops the run in this process', async () => {
    box.write('job.yaml', ['name: watched', 'command: sleep 60', 'tasks:', '  each: [a, b]', ''].join('\n'));
    const run = box.start(['run', 'job.yaml', '--ui', '--ui-port', '0']);
    let printed = '';
    run.stderr!.on('data', (chunk) => (printed += chunk));
    const url = await waitFor(() => /fanout ui: (http:\S+)/.exec(printed)?.[1], 20_000, 'the URL');
    const base = url.replace(/\/$/, '');
    const status = await waitForAsync(
      async () => {
        const body = await (await fetch(`${base}/api/runs/1`)).json();
        return body.counts.running === 2 && body;
      },
      20_000,
      'two running tasks',
    );
    expect(status).toMatchObject({ job: 'watched', state: 'running' });
    const cancelled = await fetch(`${base}/api/runs/1/cancel`, { method: 'POST' });
    expect(await cancelled.json()).toEqual({ run: 1, action: 'cancel', outcome: 'stopping' });
    const result = await finished(run);
    expect(result.code).toBe(1);
    expect(JSON.parse((await box.run(['status', '--json'])).stdout)).toMatchObject({ state: 'cancelled', counts: { cancelled: 2 } });
    // The dashboard went with the run.
    await expect(fetch(`${base}/api/runs`)).rejects.toThrow();
  });

  it('refuses a port that is not one before starting anything', async () => {
    box.write('job.yaml', ['name: never', 'command: true', 'tasks:', '  each: [a]', ''].join('\n'));
    const result = await box.run(['run', 'job.yaml', '--ui', '--ui-port', 'eighty']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('fanout: --ui-port eighty is not a port; give a number from 0 to 65535 (0: any free one)\n');
    expect((await box.run(['runs', '--json'])).stdout).toBe('[]\n');
  });
});

/** Read a run's event stream into `seen` (each `status` event's data) until `signal` aborts it. */
async function statusEvents(url: string, signal: AbortSignal, seen: unknown[]): Promise<void> {
  const response = await fetch(url, { signal });
  expect(response.headers.get('content-type')).toBe('text/event-stream');
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let at = buffer.indexOf('\n\n'); at >= 0; at = buffer.indexOf('\n\n')) {
        const message = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        const data = /^data: (.*)$/m.exec(message);
        if (message.startsWith('event: status') && data) seen.push(JSON.parse(data[1]!));
      }
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  }
}

describeWithS3('fanout ui over a run whose workdir is in S3', () => {
  let box: Sandbox;
  let engine: Engine | undefined;
  let server: UiServer | undefined;
  const saved = { ...process.env };
  beforeEach(() => (box = new Sandbox()));
  afterEach(async () => {
    await server?.close();
    await engine?.close();
    server = engine = undefined;
    box.cleanup();
    for (const key of Object.keys(s3Env('x'))) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  });

  it("reads a worker's logs from object storage, from an offset", async () => {
    const bucket = await createBucket(s3Endpoint());
    const env = s3Env(s3Endpoint());
    box.write(
      'job.yaml',
      [
        'name: stored',
        'backend: workers',
        `workdir: s3://${bucket}/work`,
        `outdir: s3://${bucket}/out`,
        'command: echo from {{item}}; echo oops >&2',
        'tasks:',
        '  each: [a]',
        '',
      ].join('\n'),
    );
    const queued = await box.run(['run', 'job.yaml', '--detach'], { env });
    expect(queued.code, queued.stderr).toBe(0);
    const worked = await finished(box.start(['worker', '--until-empty', '--scratch', box.path('scratch')], { env }));
    expect(worked.code, worked.stderr).toBe(0);
    Object.assign(process.env, env);
    engine = await Engine.open({ home: box.path('.fanout') });
    server = await startUiServer({ engine, port: 0 });
    const base = `http://127.0.0.1:${server.port}/api/runs/1/tasks/a/attempts/1/log`;
    expect(await (await fetch(base)).json()).toEqual({ offset: 0, nextOffset: 7, text: 'from a\n', found: true, running: false });
    expect(await (await fetch(`${base}?offset=2`)).json()).toMatchObject({ offset: 2, nextOffset: 7, text: 'om a\n' });
    expect(await (await fetch(`${base}?stream=stderr`)).json()).toMatchObject({ text: 'oops\n' });
  });
});
