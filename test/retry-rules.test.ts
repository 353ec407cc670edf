import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sandbox } from './harness.js';

/** What `retry:` retries when the job says little, run as users run it (local backend, real processes). */
describe('retry rules', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  const attemptsOf = () => box.query<{ reason: string }>('SELECT reason FROM attempts ORDER BY attempt').map((a) => a.reason);

  it('does not retry a failing command unless retry.on lists exit: retry.max alone retries oom, timeout and lost', async () => {
    box.write('job.yaml', ['command: exit 3', 'tasks:', '  each: [broken]', 'retry:', '  max: 2', ''].join('\n'));
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(1);
    expect(attemptsOf()).toEqual(['exit']);
  });

  it('retries a failing command when retry.on lists exit', async () => {
    box.write('job.yaml', ['command: exit 3', 'tasks:', '  each: [flaky]', 'retry:', '  max: 2', '  on: [exit]', ''].join('\n'));
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(1);
    expect(attemptsOf()).toEqual(['exit', 'exit', 'exit']);
  });

  it('accepts infra in retry.on and a platform_max, and bounds platform_max', async () => {
    const job = (platformMax: number) =>
      box.write('job.yaml', ['command: echo hi', 'tasks:', '  each: [a]', 'retry:', '  max: 1', '  on: [infra, lost]', `  platform_max: ${platformMax}`, ''].join('\n'));
    job(5);
    const valid = await box.run(['validate', 'job.yaml']);
    expect(valid.code, valid.stderr).toBe(0);
    job(1000);
    const refused = await box.run(['validate', 'job.yaml']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/job\.yaml:\d+: retry\.platform_max/);
  });
});
