import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  buildImage,
  IGNORES_TERM,
  containersLeft,
  containersRunning,
  describeWithPodman,
  expectRanInside,
  insideJob,
  MARKER,
  OOM_RETRIES,
  OOM_THEN_FITS,
} from './containers.js';
import { finished, Sandbox, waitFor } from './harness.js';
import { expectRefused } from './refused.js';

/**
 * Containers on the local backend, with real podman: tasks run in the image as the user running
 * fanout; limits, timeouts, cancel and a killed coordinator leave no container behind; odd file
 * names reach the container; the image's identity is part of the cache key; bad container
 * settings are refused before anything runs.
 */
describeWithPodman('local', 'containers on the local backend', (tag) => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  const SLOW = 180_000;
  const job = (lines: string[]) => box.write('job.yaml', `${lines.join('\n')}\n`);
  const container = (image = tag) => ['container:', `  image: ${image}`, '  pull: never'];
  const attempts = () => box.query<{ idx: number; attempt: number; reason: string }>('SELECT idx, attempt, reason FROM attempts WHERE idx >= 0 ORDER BY idx, attempt');

  it(
    'runs 20 tasks in the image, as the user running fanout, with the FANOUT_* variables',
    async () => {
      box.write('job.yaml', insideJob(tag));
      const result = await box.run(['run', 'job.yaml', '--json'], { timeoutMs: SLOW });
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ state: 'succeeded', counts: { succeeded: 20 } });
      expectRanInside(box.path('fanout-out', 'inside'), tag);
      expect(containersLeft(box)).toEqual([]);
    },
    SLOW,
  );

  it('records an oom inside the container as oom, and the escalated retry succeeds', async () => {
    job([...OOM_THEN_FITS, ...OOM_RETRIES, ...container()]);
    const result = await box.run(['run', 'job.yaml'], { timeoutMs: SLOW });
    expect(result.code, result.stderr).toBe(0);
    expect(attempts()).toEqual([
      { idx: 0, attempt: 1, reason: 'oom' },
      { idx: 0, attempt: 2, reason: 'ok' },
    ]);
    expect(box.query('SELECT state, memory FROM tasks')).toEqual([{ state: 'succeeded', memory: 240_000_000 }]);
  });

  it('a timeout stops the container: none is left', async () => {
    job([`command: ${IGNORES_TERM}`, 'tasks:', '  each: [slow]', 'resources:', '  time: 3s', ...container()]);
    const result = await box.run(['run', 'job.yaml'], { timeoutMs: SLOW });
    expect(result.code).toBe(1);
    expect(attempts()).toEqual([{ idx: 0, attempt: 1, reason: 'timeout' }]);
    expect(containersLeft(box)).toEqual([]);
  });

  it('`fanout cancel` of a running run stops its containers: none is left', async () => {
    job([`command: ${IGNORES_TERM}`, 'tasks:', '  each: [a, b, c, d]', 'concurrency: 2', ...container()]);
    const run = box.start(['run', 'job.yaml']);
    await waitFor(() => containersRunning(box).length === 2, 60_000, 'two running containers');
    const cancel = await box.run(['cancel']);
    expect(cancel.code, cancel.stderr).toBe(0);
    await finished(run, SLOW);
    expect(JSON.parse((await box.run(['status', '--json'])).stdout)).toMatchObject({ state: 'cancelled', counts: { running: 0 } });
    expect(containersLeft(box)).toEqual([]);
  });

  it('Ctrl-C of `fanout run` stops its containers: none is left', async () => {
    job([`command: ${IGNORES_TERM}`, 'tasks:', '  each: [a, b, c, d]', 'concurrency: 2', ...container()]);
    const run = box.start(['run', 'job.yaml']);
    await waitFor(() => containersRunning(box).length === 2, 60_000, 'two running containers');
    run.kill('SIGINT');
    expect((await finished(run, SLOW)).code).toBe(130);
    expect(JSON.parse((await box.run(['status', '--json'])).stdout)).toMatchObject({ state: 'cancelled', counts: { running: 0 } });
    expect(containersLeft(box)).toEqual([]);
  });

  it(
    'a SIGKILLed coordinator, then resumed: every task succeeds once, and no container is left',
    async () => {
      // Each task appends its name once it has finished its work, so a rerun would show twice.
      job([
        `command: sleep 5; echo {{ item }} >> ${box.path('runs.log')}; echo {{ item }} > {{ out }}/v`,
        'tasks:',
        '  each: [t0, t1, t2, t3]',
        'concurrency: 2',
        ...container(),
      ]);
      const first = box.start(['run', 'job.yaml']);
      await waitFor(() => containersRunning(box).length === 2, 60_000, 'two running containers');
      first.kill('SIGKILL');
      await finished(first);
      const second = await box.run(['run', 'job.yaml', '--json'], { timeoutMs: SLOW });
      expect(second.code, second.stderr).toBe(0);
      expect(JSON.parse(second.stdout)).toMatchObject({ run: 1, state: 'succeeded', counts: { succeeded: 4 } });
      expect(readFileSync(box.path('runs.log'), 'utf8').trim().split('\n').sort()).toEqual(['t0', 't1', 't2', 't3']);
      // Only an attempt killed before it started may have been retried (as lost); none ran twice.
      const retried = box.query<{ idx: number }>('SELECT idx FROM attempts WHERE attempt > 1').map((a) => a.idx);
      const lostFirst = box.query<{ idx: number }>(`SELECT idx FROM attempts WHERE attempt = 1 AND reason = 'lost'`).map((a) => a.idx);
      expect(lostFirst).toEqual(expect.arrayContaining(retried));
      expect(containersLeft(box)).toEqual([]);
    },
    SLOW,
  );

  it(
    'the coordinator and its launcher both SIGKILLed: the resumed run removes the containers it gives up as lost',
    async () => {
      // The first attempt would run for minutes; only a removal of its container ends it early.
      job([`command: if [ "$FANOUT_ATTEMPT" = 1 ]; then sleep 300; fi; echo {{ item }} > {{ out }}/v`, 'tasks:', '  each: [t0, t1]', ...container()]);
      const first = box.start(['run', 'job.yaml']);
      await waitFor(() => containersRunning(box).length === 2, 60_000, 'two running containers');
      const launcher = box.query<{ launcher: string }>('SELECT launcher FROM attempts WHERE launcher IS NOT NULL LIMIT 1')[0]!;
      const launcherPid = (JSON.parse(launcher.launcher) as { pid: number }).pid;
      first.kill('SIGKILL');
      process.kill(launcherPid, 'SIGKILL');
      await finished(first);
      const second = await box.run(['run', 'job.yaml', '--json'], { timeoutMs: SLOW });
      expect(second.code, second.stderr).toBe(0);
      expect(box.query<{ reason: string }>('SELECT reason FROM attempts WHERE attempt = 1').map((a) => a.reason)).toEqual(['lost', 'lost']);
      await waitFor(() => containersLeft(box).length === 0, 60_000, "the lost attempts' containers removed");
    },
    SLOW,
  );

  it('inputs in a folder named with quotes and spaces, and a mount with a space and a quote, are read inside the container', async () => {
    // Outside the job file's folder, so that only the input's own mount and `mounts:` bring them in.
    const data = box.path('my "data" dir');
    const reference = box.path("ref's dir");
    mkdirSync(data);
    mkdirSync(reference);
    writeFileSync(`${data}/it's here.txt`, 'input text\n');
    writeFileSync(`${reference}/ref.txt`, 'reference text\n');
    const referenceFile = `${reference}/ref.txt`.replace(/'/g, `'\\''`);
    box.write(
      'job/job.json',
      JSON.stringify({
        name: 'odd',
        command: `cat ${MARKER} {{ file }} '${referenceFile}' > {{ out }}/seen`,
        tasks: { files: '../my "data" dir/*.txt' },
        container: { image: tag, pull: 'never', mounts: ["../ref's dir"] },
      }),
    );
    const result = await box.run(['run', 'job/job.json'], { timeoutMs: SLOW });
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(box.path('fanout-out', 'odd', "it's here", 'seen'), 'utf8')).toBe(`${tag}\ninput text\nreference text\n`);
  });

  it(
    'a tag moved to new content reruns the tasks; the same content again skips them',
    async () => {
      const retagged = tag.replace(/:1$/, ':retagged');
      buildImage(retagged, `${retagged} first build`);
      job([`command: cat ${MARKER} > {{ out }}/marker`, 'tasks:', '  each: [a, b]', ...container(retagged)]);
      const counts = async () => {
        const result = await box.run(['run', 'job.yaml', '--json'], { timeoutMs: SLOW });
        expect(result.code, result.stderr).toBe(0);
        return JSON.parse(result.stdout).counts as Record<string, number>;
      };
      expect(await counts()).toMatchObject({ succeeded: 2 });
      buildImage(retagged, `${retagged} second build`);
      expect(await counts()).toMatchObject({ succeeded: 2, skipped: 0 });
      expect(readFileSync(box.path('fanout-out', 'job', 'a', 'marker'), 'utf8')).toBe(`${retagged} second build\n`);
      expect(await counts()).toMatchObject({ succeeded: 0, skipped: 2 });
    },
    SLOW,
  );

  /** Refused before anything runs: exit 2, one line naming the file, line and field, and no task ran. */
  async function refused(lines: string[], expected: RegExp[]) {
    job(['command: touch {{ jobdir }}/ran-{{ name }}', ...lines]);
    await expectRefused(box, ['run', 'job.yaml'], expected);
    expect(existsSync(box.path('ran-a'))).toBe(false);
  }

  it('an unknown engine is refused by the schema, naming the field', async () => {
    await refused(['tasks:', '  each: [a]', 'container:', `  image: ${tag}`, '  engine: rocket'], [/job\.yaml:6: container\.engine/, /podman/]);
  });

  it('an image that is not present with pull: never is refused before the run', async () => {
    const missing = tag.replace(/:1$/, ':never-built');
    await refused(
      ['tasks:', '  each: [a]', ...container(missing)],
      [/job\.yaml:5: container\.image/, new RegExp(`${missing.replace(/[.]/g, '\\.')} is not present`), /pull/],
    );
  });

  it('an image template that renders empty for one row of the table is refused, naming the row', async () => {
    box.write('samples.csv', `name,image\na,${tag}\nb,\n`);
    await refused(['tasks:', '  table: samples.csv', 'container:', '  image: "{{ image }}"', '  pull: never'], [/job\.yaml:5: container\.image/, /empty for task b/]);
  });

  it('a mount of a path that does not exist is refused, naming the entry', async () => {
    await refused(
      ['tasks:', '  each: [a]', ...container(), '  mounts:', '    - /nonexistent/reference data'],
      [/job\.yaml:8: container\.mounts\.0/, /\/nonexistent\/reference data does not exist/],
    );
  });
});
