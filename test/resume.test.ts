import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sandbox, waitFor } from './harness.js';

/** Each task appends its name to runs.log (outside fanout's folders), so reruns are visible. */
const LOGGING_JOB = (command = 'echo {{ item }} > {{ out }}/v') => `command: echo {{ item }} >> {{ log }}; ${command}\ntasks:\n  each: [a, b, c]\nvars:\n  log: LOG\n`;

describe('resume and the cache', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  const job = (command?: string) => box.write('job.yaml', LOGGING_JOB(command).replace('LOG', box.path('runs.log')));
  const ranTimes = () => readFileSync(box.path('runs.log'), 'utf8').trim().split('\n').length;

  it('a second run skips every task whose cache key matches, and counts them as skipped', async () => {
    job();
    expect((await box.run(['run', 'job.yaml'])).code).toBe(0);
    const second = await box.run(['run', 'job.yaml', '--json']);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ run: 2, state: 'succeeded', counts: { skipped: 3, succeeded: 0 } });
    expect(ranTimes()).toBe(3);
  });

  it('changing the command reruns what it changes; --fresh reruns everything', async () => {
    job();
    await box.run(['run', 'job.yaml']);
    job('echo {{ item }}{{ item }} > {{ out }}/v');
    expect(JSON.parse((await box.run(['run', 'job.yaml', '--json'])).stdout).counts).toMatchObject({ succeeded: 3, skipped: 0 });
    expect(readFileSync(box.path('fanout-out/job/a/v'), 'utf8')).toBe('aa\n');
    expect(JSON.parse((await box.run(['run', 'job.yaml', '--json', '--fresh'])).stdout).counts).toMatchObject({ succeeded: 3 });
    expect(ranTimes()).toBe(9);
  });

  it('--fresh runs the gather again over the outputs it wrote anew; a plain rerun skips it', async () => {
    box.write('job.yaml', `${LOGGING_JOB().replace('LOG', box.path('runs.log'))}gather: echo gathered >> ${box.path('gathers.log')}; cat */v > all.txt\n`);
    const gathers = () => readFileSync(box.path('gathers.log'), 'utf8').trim().split('\n').length;
    expect(JSON.parse((await box.run(['run', 'job.yaml', '--json'])).stdout)).toMatchObject({ gather: 'succeeded' });
    expect(JSON.parse((await box.run(['run', 'job.yaml', '--json'])).stdout)).toMatchObject({ gather: 'skipped', counts: { skipped: 3 } });
    expect(gathers()).toBe(1);
    const fresh = await box.run(['run', 'job.yaml', '--json', '--fresh']);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(JSON.parse(fresh.stdout)).toMatchObject({ state: 'succeeded', gather: 'succeeded', counts: { succeeded: 3 } });
    expect(ranTimes()).toBe(6);
    expect(gathers()).toBe(2);
  });

  it('an input file that changed reruns only its task; resources do not count', async () => {
    box.write('data/x.txt', '1');
    box.write('data/y.txt', '1');
    box.write('job.yaml', 'command: cat {{ file }} > {{ out }}/copy\ntasks:\n  files: data/*.txt\n');
    await box.run(['run', 'job.yaml']);
    box.write('data/y.txt', '22');
    box.write('job.yaml', 'command: cat {{ file }} > {{ out }}/copy\ntasks:\n  files: data/*.txt\nresources:\n  memory: 1GB\n');
    const second = JSON.parse((await box.run(['run', 'job.yaml', '--json'])).stdout);
    expect(second.counts).toMatchObject({ succeeded: 1, skipped: 1 });
    expect(readFileSync(box.path('fanout-out/job/y/copy'), 'utf8')).toBe('22');
  });

  it('a deleted output is not taken for done', async () => {
    job();
    await box.run(['run', 'job.yaml']);
    const { rmSync } = await import('node:fs');
    rmSync(box.path('fanout-out/job/b'), { recursive: true });
    expect(JSON.parse((await box.run(['run', 'job.yaml', '--json'])).stdout).counts).toMatchObject({ succeeded: 1, skipped: 2 });
  });

  it('retry --failed reruns only the failed tasks of a run', async () => {
    box.write(
      'job.yaml',
      `command: echo {{ item }} >> ${box.path('runs.log')}; test -e ${box.path('ok')}-{{ item }} || test {{ item }} != b\ntasks:\n  each: [a, b, c]\n`,
    );
    expect((await box.run(['run', 'job.yaml'])).code).toBe(1);
    box.write('ok-b', '');
    const retried = await box.run(['retry', '--failed', '--json']);
    expect(retried.code, retried.stderr).toBe(0);
    expect(JSON.parse(retried.stdout)).toMatchObject({ run: 1, state: 'succeeded', counts: { succeeded: 3, failed: 0 } });
    // a and b run at the same time, so only the retry's place in the log is certain.
    const ran = readFileSync(box.path('runs.log'), 'utf8').split('\n').filter(Boolean);
    expect(ran.slice(0, 3).sort()).toEqual(['a', 'b', 'c']);
    expect(ran.slice(3)).toEqual(['b']);
  });
});

describe('replacing an output', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  it('swaps the new output in whole and leaves no copy of the old one behind', async () => {
    box.write('job.yaml', 'command: echo {{ v }} > {{ out }}/value; touch {{ out }}/only-{{ v }}\ntasks:\n  each: [x]\nvars:\n  v: old\n');
    expect((await box.run(['run', 'job.yaml'])).code).toBe(0);
    expect((await box.run(['run', 'job.yaml', '--set', 'v=new'])).code).toBe(0);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(box.path('fanout-out/job/x')).sort()).toEqual(['only-new', 'value']);
    expect(readFileSync(box.path('fanout-out/job/x/value'), 'utf8')).toBe('new\n');
    await waitFor(() => readdirSync(box.path('fanout-out/job/.fanout-staging')).length === 0, 5000, 'the old output to be removed');
  });
});
