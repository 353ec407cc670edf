import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Fanout, FanoutApiError, JobFileError, type FanoutRun, type ProgressEvent, type TaskResult } from '../dist/index.js';
import { writeWorkModule } from './api-fixtures.js';
import { Sandbox } from './harness.js';
import { WebhookReceiver } from './webhook-receiver.js';

/**
 * The TypeScript API, as users import it (the built package), on the local backend: submit,
 * map over a command and over a function, progress, wait, gather, cancel, and re-opening a run
 * by id from another process.
 */

const DIST = resolve(import.meta.dirname, '..', 'dist', 'index.js');

describe('the TypeScript API', () => {
  let box: Sandbox;
  let fo: Fanout;
  beforeEach(async () => {
    box = new Sandbox();
    fo = await Fanout.open({ home: box.path('.fanout') });
  });
  afterEach(async () => {
    await fo.close();
    box.cleanup();
  });

  async function events(run: FanoutRun): Promise<ProgressEvent[]> {
    const seen: ProgressEvent[] = [];
    for await (const event of run.progress()) seen.push(event);
    return seen;
  }

  it('submit refuses a bad field with the message a job file gets', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['command: echo\ntasks:\n  each: [a, b, {x: [1]}]\n', { command: 'echo', tasks: { each: ['a', 'b', { x: [1] }] } }],
      ['command: echo\ntasks:\n  each: [a]\nresources:\n  memroy: 4GB\n', { command: 'echo', tasks: { each: ['a'] }, resources: { memroy: '4GB' } }],
      ['command: echo\ntasks:\n  each: [a]\nconcurrency: many\n', { command: 'echo', tasks: { each: ['a'] }, concurrency: 'many' }],
      ['command: echo\ntasks:\n  each: [a]\nresources:\n  time: soon\n', { command: 'echo', tasks: { each: ['a'] }, resources: { time: 'soon' } }],
      ['command: echo {{ sample }}\ntasks:\n  each: [a]\n', { command: 'echo {{ sample }}', tasks: { each: ['a'] } }],
    ];
    for (const [yaml, object] of cases) {
      box.write('job.yaml', `name: job\n${yaml}`);
      const cli = await box.run(['validate', 'job.yaml']);
      expect(cli.code, cli.stdout).toBe(2);
      const error = await fo.submit({ name: 'job', ...object } as never, { baseDir: box.dir }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(JobFileError);
      const { message, fix, location } = error as JobFileError;
      expect(location.file).toBe('<submit>');
      // Same field, problem and fix; only the file (and the line a file has) differ.
      const cliText = cli.stderr.trim().replace(/^fanout: job\.yaml:\d+: /, '');
      expect(`${message.replace(/^<submit>: /, '')}${fix ? `; ${fix}` : ''}`).toBe(cliText);
    }
    const each = await fo.submit({ name: 'job', command: 'echo', tasks: { each: ['a', 'b', { x: [1] } as never] } }).catch((e: JobFileError) => e);
    expect((each as JobFileError).message).toMatch(/^<submit>: tasks\.each\[2\]: /);
    // Nothing ran.
    expect(existsSync(box.path('fanout-out'))).toBe(false);
  });

  it('submit needs a name, and resolves relative paths against baseDir', async () => {
    await expect(fo.submit({ command: 'echo', tasks: { each: ['a'] } })).rejects.toThrow(/<submit>: name: is required/);
    box.write('data/x.txt', 'one two\n');
    box.write('data/y.txt', 'three\n');
    const run = await fo.submit({ name: 'words', command: 'wc -w < {{ file }} > {{ out }}/n', tasks: { files: 'data/*.txt' } }, { baseDir: box.dir });
    expect(await run.wait()).toMatchObject({ state: 'succeeded', counts: { succeeded: 2 } });
    const results = await run.gather();
    expect(results.map((r) => r.name)).toEqual(['x', 'y']);
    expect(results.map((r) => readFileSync(join(r.outputs, 'n'), 'utf8').trim())).toEqual(['2', '1']);
    expect(results[0]!.outputs).toBe(box.path('fanout-out', 'words', 'x'));
  });

  it('maps a command over items: progress, wait and gather in item order', async () => {
    const run = await fo.map('echo {{ item }} > {{ out }}/v; test {{ item }} != c', ['a', 'b', 'c', 'd'], { baseDir: box.dir, concurrency: 2 });
    const seen = await events(run);
    const last = seen.at(-1)!;
    expect(last).toMatchObject({ run: run.id, state: 'failed', total: 4, counts: { succeeded: 3, failed: 1, pending: 0, running: 0 } });
    expect(seen.slice(0, -1).every((event) => event.state === 'running')).toBe(true);
    expect(await run.wait()).toEqual({ run: run.id, job: run.job, state: 'failed', counts: last.counts, gather: null });
    const results = await run.gather();
    expect(results.map((r) => [r.name, r.state])).toEqual([
      ['a', 'succeeded'],
      ['b', 'succeeded'],
      ['c', 'failed'],
      ['d', 'succeeded'],
    ]);
    expect(readFileSync(join(results[3]!.outputs, 'v'), 'utf8')).toBe('d\n');
    expect(results[2]!.error).toEqual({ reason: 'exit', message: 'its command exited with code 1' });
    expect(results[0]!.record).toMatchObject({ reason: 'ok', exitCode: 0, attempt: 1 });
    expect(results[0]!.value).toBeUndefined();
  });

  it('sends the alerts asked for in the options, as a job file does', async () => {
    const hook = await WebhookReceiver.start();
    try {
      const run = await fo.map('test {{ item }} != b', ['a', 'b'], { baseDir: box.dir, notify: { webhook: hook.url(), on: ['task_failed', 'failed'] } });
      await run.wait();
      // close() lets the deliveries in flight finish.
      await fo.close();
      fo = await Fanout.open({ home: box.path('.fanout') });
      expect(hook.received.map((r) => r.body.event)).toEqual(['task_failed', 'failed']);
      expect(hook.received[0]!.body).toMatchObject({ run: run.id, task: { name: 'b', reason: 'exit' } });
      expect(hook.received[1]!.body).toMatchObject({ run: run.id, state: 'failed', counts: { succeeded: 1, failed: 1 } });
    } finally {
      await hook.close();
    }
  });

  it('maps a function over items: values in item order, thrown errors with message and stack', async () => {
    const module = writeWorkModule(box);
    // The first item takes longest, so tasks end in another order than the items.
    const items = [
      { n: 3, delay: 600, label: 'x y' },
      { n: 1, delay: 0 },
      { n: 2, delay: 200, label: "it's" },
    ];
    const run = await fo.map(module, 'double', items, { baseDir: box.dir, concurrency: 3 });
    expect(await run.wait()).toMatchObject({ state: 'succeeded', counts: { succeeded: 3 } });
    const results = await run.gather<{ n: number; label: string | null }>();
    expect(results.map((r) => r.value)).toEqual([
      { n: 6, label: 'x y' },
      { n: 2, label: null },
      { n: 4, label: "it's" },
    ]);
    expect(JSON.parse(readFileSync(join(results[0]!.outputs, 'return.json'), 'utf8'))).toEqual({ n: 6, label: 'x y' });

    const failing = await fo.map(new URL(`file://${module}`), 'failOnOdd', [2, 3, 4], { baseDir: box.dir });
    expect(await failing.wait()).toMatchObject({ state: 'failed', counts: { succeeded: 2, failed: 1 } });
    const [two, three, four] = await failing.gather<number>();
    expect([two!.value, four!.value]).toEqual([2, 4]);
    expect(three).toMatchObject({ state: 'failed', value: undefined, error: { reason: 'exit', errorName: 'RangeError', message: 'odd item 3' } });
    expect(three!.error!.stack).toMatch(/RangeError: odd item 3\n\s+at failOnOdd \(file:\/\/.*work\.mjs:\d+/);

    const nothing = await fo.map(module, 'nothing', [1], { baseDir: box.dir });
    expect((await nothing.gather())[0]).toMatchObject({ state: 'succeeded', value: undefined });
    const unserialisable = await fo.map(module, 'returnsFunction', [1], { baseDir: box.dir });
    expect((await unserialisable.gather())[0]!.error!.message).toMatch(/the value returnsFunction returned \.f is a function, which JSON cannot carry/);
  });

  it('a function that never settles is stopped by the time limit; one that cannot settle fails at once', async () => {
    const module = writeWorkModule(box);
    const started = Date.now();
    const run = await fo.map(module, 'forever', ['a'], { baseDir: box.dir, resources: { time: '2s' } });
    expect(await run.wait()).toMatchObject({ state: 'failed', counts: { failed: 1 } });
    expect((await run.gather())[0]!.error).toEqual({ reason: 'timeout', message: 'it was stopped at its time limit (resources.time)' });
    expect(Date.now() - started).toBeLessThan(30_000);

    const dangling = await fo.map(module, 'dangling', ['a'], { baseDir: box.dir });
    const [result] = await dangling.gather();
    expect(result!.error).toMatchObject({ reason: 'exit', message: expect.stringMatching(/never settles/) });
  });

  it('cancel stops a run: running tasks terminated, pending ones cancelled', async () => {
    const run = await fo.map('sleep 30', [1, 2, 3, 4, 5], { baseDir: box.dir, concurrency: 1 });
    for await (const event of run.progress()) if (event.counts.running > 0) break;
    const summary = await run.cancel();
    expect(summary).toMatchObject({ state: 'cancelled', counts: { cancelled: 5 } });
    const results = await run.gather();
    expect(results[0]!.error).toMatchObject({ reason: 'cancelled' });
    expect(results[4]!.error).toEqual({ reason: null, message: 'it never ran: the run was cancelled first' });
  });

  it('a run re-opened by id in a new process gathers the same results, running nothing again', async () => {
    const module = writeWorkModule(box);
    const run = await fo.map(module, 'failOnOdd', [4, 5, 6], { baseDir: box.dir });
    const here = await run.gather();
    const attemptsBefore = box.query('SELECT run_id, idx, attempt, reason, ended_at FROM attempts ORDER BY run_id, idx, attempt');
    await fo.close();

    const script = `
      import { Fanout } from ${JSON.stringify(DIST)};
      const fo = await Fanout.open({ home: ${JSON.stringify(box.path('.fanout'))} });
      const run = await fo.run(${run.id});
      const summary = await run.wait();
      const results = await run.gather();
      await fo.close();
      process.stdout.write(JSON.stringify({ summary, results }));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: box.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise((done) => child.on('exit', done));
    expect(code, stderr).toBe(0);
    const there = JSON.parse(stdout) as { summary: unknown; results: TaskResult[] };
    expect(there.results).toEqual(JSON.parse(JSON.stringify(here)));
    expect(there.results.map((r) => r.value ?? null)).toEqual([4, null, 6]);
    expect(there.summary).toMatchObject({ run: run.id, state: 'failed', counts: { succeeded: 2, failed: 1 } });
    expect(box.query('SELECT run_id, idx, attempt, reason, ended_at FROM attempts ORDER BY run_id, idx, attempt')).toEqual(attemptsBefore);
    fo = await Fanout.open({ home: box.path('.fanout') });
  });

  it('a run whose process was killed is taken over by fo.run(id) in another process', async () => {
    const script = `
      import { Fanout } from ${JSON.stringify(DIST)};
      const fo = await Fanout.open({ home: ${JSON.stringify(box.path('.fanout'))} });
      const run = await fo.map('sleep 1; echo {{ item }} > {{ out }}/v', ['a', 'b', 'c'], { baseDir: ${JSON.stringify(box.dir)}, concurrency: 1 });
      for await (const event of run.progress()) if (event.counts.succeeded === 1) break;
      process.stdout.write(String(run.id) + '\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: box.dir, stdio: ['ignore', 'pipe', 'inherit'] });
    const id = await new Promise<number>((done) => child.stdout.once('data', (chunk) => done(Number(String(chunk).trim()))));
    child.kill('SIGKILL');
    await new Promise((done) => child.on('exit', done));

    const run = await fo.run(id);
    expect(await run.wait()).toMatchObject({ state: 'succeeded', counts: { succeeded: 3 } });
    const results = await run.gather();
    expect(results.map((r) => readFileSync(join(r.outputs, 'v'), 'utf8'))).toEqual(['a\n', 'b\n', 'c\n']);
    // Each task ran once: what was running when the process died was adopted, not run again.
    expect(results.map((r) => r.attempts)).toEqual([1, 1, 1]);
  });

  it('a second map of the same items skips the done tasks and still gathers their values', async () => {
    const module = writeWorkModule(box);
    const first = await fo.map(module, 'double', [{ n: 1 }, { n: 2 }], { baseDir: box.dir });
    await first.wait();
    const second = await fo.map(module, 'double', [{ n: 1 }, { n: 2 }, { n: 3 }], { baseDir: box.dir });
    expect(await second.wait()).toMatchObject({ state: 'succeeded', counts: { skipped: 2, succeeded: 1 } });
    const results = await second.gather();
    expect(results.map((r) => [r.state, r.value])).toEqual([
      ['skipped', { n: 2, label: null }],
      ['skipped', { n: 4, label: null }],
      ['succeeded', { n: 6, label: null }],
    ]);
    expect(results[0]!.record).toMatchObject({ runId: first.id, reason: 'ok' });
  });
});

describe('examples/api/map.mjs', () => {
  it('maps a function over the example files and prints what it returned', async () => {
    const box = new Sandbox();
    try {
      const example = resolve(import.meta.dirname, '..', 'examples', 'api', 'map.mjs');
      const child = spawn(process.execPath, [example], { cwd: box.dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      expect(await new Promise((done) => child.on('exit', done)), stderr).toBe(0);
      const data = resolve(import.meta.dirname, '..', 'examples', 'per-file', 'data');
      const expected = ['alpha', 'beta', 'delta', 'epsilon', 'gamma'].map((name) => {
        const text = readFileSync(join(data, `${name}.txt`), 'utf8');
        return `${name}.txt\t${text.split('\n').filter(Boolean).length}\t${text.split(/\s+/).filter(Boolean).length}`;
      });
      expect(stdout.trim().split('\n')).toEqual(expected);
      expect(stderr).toMatch(/run 1: 5\/5 done, 0 failed/);
      expect(existsSync(box.path('.fanout', 'state.db'))).toBe(true);
    } finally {
      box.cleanup();
    }
  });
});

describe('the TypeScript API refuses bad input', () => {
  let box: Sandbox;
  let fo: Fanout | undefined;
  beforeEach(() => {
    box = new Sandbox();
  });
  afterEach(async () => {
    await fo?.close();
    fo = undefined;
    box.cleanup();
  });

  async function refused(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<FanoutApiError> {
    const error = await promise.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FanoutApiError);
    expect((error as FanoutApiError).code).toBe(code);
    expect((error as FanoutApiError).message).toMatch(pattern);
    return error as FanoutApiError;
  }

  it('Fanout.open: unknown options, settings the backend does not use, bad values', async () => {
    const home = box.path('.fanout');
    await refused(
      Fanout.open({ home, slrum: { partition: 'x' } } as never),
      'bad-option',
      /unknown option "slrum"; did you mean "slurm"\? known options: home, store, cpus, memory, grace, backend, concurrency/,
    );
    await refused(
      Fanout.open({ home, backend: 'local', slurm: { partition: 'debug' } }),
      'bad-option',
      /the local backend does not use `slurm` settings; drop `slurm`, or open with backend: 'slurm'/,
    );
    await refused(Fanout.open({ home, backend: 'slurm', sge: { queue: 'all.q' } }), 'bad-option', /slurm backend does not use `sge`/);
    await refused(
      Fanout.open({ home, backend: 'slurm', slurm: { partion: 'debug' } as never }),
      'bad-option',
      /<Fanout\.open>: slurm\.partion: unknown field "partion"; did you mean "partition"\?/,
    );
    await refused(Fanout.open({ home, backend: 'kubernetes' as never }), 'bad-option', /<Fanout\.open>: backend: must be one of "local", "slurm", "sge", "workers"/);
    await refused(Fanout.open({ home, concurrency: 0 }), 'bad-option', /concurrency: must be at least 1/);
    await refused(Fanout.open({ home, cpus: 1.5 }), 'bad-option', /cpus must be a whole number of at least 1/);
    await refused(Fanout.open({ home, memory: 'lots' }), 'bad-option', /memory "lots" is not a size such as 8GB/);
    await refused(Fanout.open({ home, grace: 'soon' }), 'bad-option', /grace "soon" is not a duration/);
  });

  it('map: items that are not JSON name the item index', async () => {
    fo = await Fanout.open({ home: box.path('.fanout') });
    const module = writeWorkModule(box);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const shared = { x: 1 };
    const cases: Array<[unknown[], RegExp, number]> = [
      [[1, () => 2], /item 1 is a function, which JSON cannot carry/, 1],
      [[{ n: 10n }], /item 0 \.n is a BigInt/, 0],
      [[1, 2, undefined], /item 2 is undefined/, 2],
      [[{ a: [1, { b: undefined }] }], /item 0 \.a\[1\]\.b is undefined/, 0],
      [[1, cyclic], /item 1 \.self is a cycle back to the value itself/, 1],
      [[{ when: new Date(0) }], /item 0 \.when is a Date/, 0],
      [[NaN], /item 0 is NaN/, 0],
      [[new Map()], /item 0 is a Map/, 0],
    ];
    for (const [items, pattern, index] of cases) {
      const error = await refused(fo.map(module, 'double', items), 'item-not-json', pattern);
      expect(error.index).toBe(index);
      expect(error.message).toMatch(/pass items made of objects, arrays, strings, finite numbers, booleans and null/);
    }
    // The same object twice is not a cycle.
    const run = await fo.map(module, 'nothing', [{ a: shared, b: shared }], { baseDir: box.dir });
    expect(await run.wait()).toMatchObject({ state: 'succeeded' });
    await refused(fo.map(module, 'double', [{ data: 'x'.repeat(200_000) }]), 'item-too-big', /item 0 is 200\d{3} bytes as JSON.*pass a path to a file/);
    expect(existsSync(box.path('fanout-out', 'map-double'))).toBe(false);
  });

  it('map: a module that cannot be imported, or does not export the function', async () => {
    fo = await Fanout.open({ home: box.path('.fanout') });
    const module = writeWorkModule(box);
    await refused(fo.map(box.path('missing.mjs'), 'double', [1]), 'module-not-importable', /missing\.mjs does not exist; pass an absolute path or a file: URL/);
    box.write('broken.mjs', 'export const = ;\n');
    await refused(
      fo.map(box.path('broken.mjs'), 'double', [1]),
      'module-not-importable',
      /broken\.mjs cannot be imported: [\s\S]*; fix the module so that `node` can import it$/,
    );
    await refused(fo.map('https://example.org/work.mjs', 'double', [1]), 'module-not-importable', /is not a file; .*pass a path or a file: URL/);
    await refused(
      fo.map(module, 'tripple', [1]),
      'export-not-function',
      /does not export a function named "tripple"; it exports the functions: double, failOnOdd, forever/,
    );
    await refused(fo.map(module, 'notAFunction', [1]), 'export-not-function', /named "notAFunction" \(it is number\)/);
    // A relative path resolves against baseDir.
    const run = await fo.map('work.mjs', 'double', [{ n: 5 }], { baseDir: box.dir });
    expect((await run.gather())[0]!.value).toEqual({ n: 10, label: null });
  });

  it('map and submit: options they do not take, ids that are not runs, a closed Fanout', async () => {
    fo = await Fanout.open({ home: box.path('.fanout') });
    await refused(fo.map('echo {{ item }}', { a: 1 } as never), 'bad-option', /items must be an array, not object; call map\(commandTemplate, items, options\)/);
    await refused(
      fo.map('work.mjs', 'double', undefined as never),
      'bad-option',
      /items must be an array, not undefined; call map\(module, exportName, items, options\)/,
    );
    await refused(fo.map('echo {{ item }}', [1], { command: 'x' } as never), 'bad-option', /"command" is made by map itself; use submit/);
    await expect(fo.map('echo {{ item }}', [1], { resorces: { time: '1m' } } as never)).rejects.toThrow(/^<map>: resorces: unknown field "resorces"$/);
    await expect(fo.map('echo {{ item }}', [1, [2]] as never)).rejects.toThrow(/^<map>: tasks\.each\[1\]: must be a value/);
    await refused(
      fo.submit({ name: 'x', command: 'echo', tasks: { each: [1] } }, { basedir: '.' } as never),
      'bad-option',
      /submit options: unknown option "basedir"; did you mean "baseDir"\?/,
    );
    await refused(fo.run(999), 'no-such-run', /there is no run 999 in this store/);
    await fo.close();
    await refused(fo.map('echo', [1]), 'closed', /this Fanout is closed/);
    fo = undefined;
  });

  it('close refuses while a run it drives is still going', async () => {
    fo = await Fanout.open({ home: box.path('.fanout') });
    const run = await fo.map('sleep 30', [1], { baseDir: box.dir });
    await refused(
      fo.map('sleep 30', [2], { baseDir: box.dir }),
      'bad-option',
      /job map-[0-9a-f]+ already has a run going in this process \(run \d+\); give this one another `name`/,
    );
    const other = await fo.map('sleep 30', [2], { baseDir: box.dir, name: 'other' });
    await other.cancel();
    await refused(fo.close(), 'closed', /run \d+ \(map-[0-9a-f]+\) is still going in this process; await run\.wait\(\) or run\.cancel\(\)/);
    await run.cancel();
  });
});
