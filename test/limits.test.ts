import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sandbox } from './harness.js';

/** A task that allocates about `mb` megabytes and holds it briefly. */
const allocate = (mb: string) => `node -e "const a=[];for(let i=0;i<${mb};i++)a.push(Buffer.alloc(1<<20,1));setTimeout(()=>{},300)"`;

describe('limits and escalation', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  it('stops a task past its memory as oom, retries it with more, and then it succeeds', async () => {
    box.write(
      'job.yaml',
      [
        `command: ${allocate('{{ item }}')}`,
        'tasks:',
        '  each: [300]',
        'resources:',
        '  memory: 150MB',
        'retry:',
        '  max: 2',
        '  on: [oom]',
        '  escalate:',
        '    memory: 3',
        '',
      ].join('\n'),
    );
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    const attempts = box.query<{ attempt: number; reason: string; memory: number; peak_memory: number }>(
      'SELECT attempt, reason, memory, peak_memory FROM attempts WHERE idx = 0 ORDER BY attempt',
    );
    expect(attempts.map((a) => a.reason)).toEqual(['oom', 'ok']);
    expect(attempts[0]!.memory).toBe(150e6);
    expect(attempts[1]!.memory).toBe(450e6);
    // The successful attempt really used more than the first limit: the retry was needed.
    expect(attempts[1]!.peak_memory).toBeGreaterThan(300e6);
    const tasks = JSON.parse((await box.run(['tasks', '--json'])).stdout);
    expect(tasks[0]).toMatchObject({ state: 'succeeded', attempts: 2, reason: 'ok', memory: 450e6 });
  });

  it('fails for good when retries run out, with exit code 1 and the reason kept', async () => {
    box.write('job.yaml', `command: ${allocate('400')}\ntasks:\n  each: [x]\nresources:\n  memory: 100MB\nretry:\n  max: 1\n`);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code).toBe(1);
    const status = JSON.parse((await box.run(['status', '--json'])).stdout);
    expect(status).toMatchObject({ state: 'failed', counts: { failed: 1, succeeded: 0 } });
    const [task] = JSON.parse((await box.run(['tasks', '--json', '--state', 'failed'])).stdout);
    expect(task).toMatchObject({ name: 'x', reason: 'oom', attempts: 2 });
  });

  it('stops a task past its time as timeout (terminate, then kill) and escalates time', async () => {
    // The first attempt ignores SIGTERM, so only the kill after the grace period ends it.
    box.write(
      'job.yaml',
      [
        `command: trap '' TERM; if [ "$FANOUT_ATTEMPT" = 1 ]; then sleep 30; else sleep 1.2; fi; echo done > {{ out }}/x`,
        'tasks:',
        '  each: [slow]',
        'resources:',
        '  time: 1s',
        'retry:',
        '  max: 1',
        '  on: [timeout]',
        '  escalate:',
        '    time: 3',
        '',
      ].join('\n'),
    );
    const started = Date.now();
    const result = await box.run(['run', 'job.yaml', '--grace', '1s']);
    expect(result.code, result.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    const attempts = box.query<{ reason: string; time_ms: number; signal: string | null }>('SELECT reason, time_ms, signal FROM attempts ORDER BY attempt');
    expect(attempts.map((a) => a.reason)).toEqual(['timeout', 'ok']);
    expect(attempts.map((a) => a.time_ms)).toEqual([1000, 3000]);
  });

  it('a failing command is recorded as exit with its code, and its output never committed', async () => {
    box.write('job.yaml', 'command: echo partial > {{ out }}/half.txt; exit 3\ntasks:\n  each: [bad]\n');
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code).toBe(1);
    const [task] = JSON.parse((await box.run(['tasks', '--json'])).stdout);
    expect(task).toMatchObject({ state: 'failed', reason: 'exit', exitCode: 3 });
    const { existsSync } = await import('node:fs');
    expect(existsSync(box.path('fanout-out/job/bad'))).toBe(false);
  });

  it('records peak memory, cpu time and host for every attempt, and keeps both logs', async () => {
    box.write('job.yaml', `command: ${allocate('120')}; echo out; echo err >&2\ntasks:\n  each: [m]\n`);
    expect((await box.run(['run', 'job.yaml'])).code).toBe(0);
    const [attempt] = box.query<{ peak_memory: number; cpu_ms: number; host: string; started_at: number; ended_at: number }>('SELECT * FROM attempts');
    expect(attempt!.peak_memory).toBeGreaterThan(120e6);
    expect(attempt!.cpu_ms).toBeGreaterThan(0);
    expect(attempt!.host).toBeTruthy();
    expect(attempt!.ended_at).toBeGreaterThanOrEqual(attempt!.started_at);
    expect((await box.run(['logs', 'm'])).stdout).toBe('out\n');
    expect((await box.run(['logs', 'm', '--stderr'])).stdout).toBe('err\n');
  });

  it('never runs more than concurrency tasks at once', async () => {
    // Each task records how many tasks are inside the critical section when it enters.
    box.write(
      'job.yaml',
      [
        'command: |',
        '  mkdir -p ../../../../live; touch ../../../../live/{{ name }}; ls ../../../../live | wc -l > {{ out }}/seen; sleep 0.3; rm ../../../../live/{{ name }}',
        'tasks:',
        '  each: [a, b, c, d, e, f]',
        'concurrency: 2',
        '',
      ].join('\n'),
    );
    expect((await box.run(['run', 'job.yaml'])).code).toBe(0);
    const { readFileSync } = await import('node:fs');
    const seen = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => Number(readFileSync(box.path('fanout-out/job', n, 'seen'), 'utf8')));
    expect(Math.max(...seen)).toBeLessThanOrEqual(2);
  });
});
