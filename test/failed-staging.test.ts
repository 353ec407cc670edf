import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mayMount } from './mounts.mjs';
import { Sandbox } from './harness.js';

// Read-only and full disks are real mounts; without the right to mount, these are skipped (see mounts.ts).
const needsMount = it.skipIf(!mayMount());

/** Writes a complete 1 MB file into its output, then fails until its attempt `succeedAt`. */
const writeThenFail = (succeedAt: number) =>
  `command: head -c 1000000 /dev/zero > {{ out }}/part.bin && [ "$FANOUT_ATTEMPT" -ge ${succeedAt} ]\ntasks:\n  each: [a]\noutdir: out\nretry:\n  max: 3\n  on: [exit]\n`;

describe('the staging folders of failed attempts', () => {
  let box: Sandbox;
  let mounted: string | undefined;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => {
    if (mounted) execFileSync('umount', [mounted]);
    mounted = undefined;
    box.cleanup();
  });

  function smallDisk(relative: string, size: string): void {
    mkdirSync(box.path(relative), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', box.path(relative)]);
    mounted = box.path(relative);
  }

  it("are removed when the task is retried: only the last attempt's stays, for inspection", async () => {
    box.write('job.yaml', writeThenFail(99));
    expect((await box.run(['run', 'job.yaml'])).code).toBe(1);
    const [task] = JSON.parse((await box.run(['tasks', '--json'])).stdout);
    expect(task).toMatchObject({ state: 'failed', attempts: 4, reason: 'exit' });
    expect(readdirSync(box.path('out', '.fanout-staging'))).toEqual(['1.0.4']);
    expect(existsSync(box.path('out', '.fanout-staging', '1.0.4', 'part.bin'))).toBe(true);
  });

  needsMount('do not keep a disk full: retries of a task that writes 1 MB fit on a 2.5 MB disk', async () => {
    smallDisk('out', '2500k');
    box.write('job.yaml', writeThenFail(4));
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    const reasons = box.query<{ reason: string; error: string | null }>('SELECT reason, error FROM attempts ORDER BY attempt');
    expect(reasons.map((a) => a.reason)).toEqual(['exit', 'exit', 'exit', 'ok']);
    // Each failure was the task's own (its exit code), not a disk kept full by earlier attempts.
    for (const attempt of reasons.slice(0, 3)) expect(attempt.error ?? '').not.toMatch(/full/);
    expect(readdirSync(box.path('out', '.fanout-staging'))).toEqual([]);
  });

  needsMount('a task that fails because the disk is full says so in its reason text', async () => {
    smallDisk('out', '1m');
    box.write('job.yaml', 'command: head -c 2000000 /dev/zero > {{ out }}/big.bin\ntasks:\n  each: [a]\noutdir: out\n');
    expect((await box.run(['run', 'job.yaml'])).code).toBe(1);
    const [attempt] = box.query<{ reason: string; error: string | null }>('SELECT reason, error FROM attempts');
    expect(attempt!.reason).toBe('exit');
    expect(attempt!.error).toMatch(/the disk holding .*out\/\.fanout-staging\/1\.0\.1 is full/);
    const failed = await box.run(['status']);
    expect(failed.stdout + failed.stderr).not.toMatch(/internal error/);
  });

  it('left by an attempt recorded lost are removed', async () => {
    // The task kills its own launcher after writing half its output: the attempt is lost.
    box.write('job.yaml', 'command: head -c 1000000 /dev/zero > {{ out }}/part.bin; kill -9 $PPID; sleep 5\ntasks:\n  each: [a]\noutdir: out\n');
    expect((await box.run(['run', 'job.yaml'])).code).toBe(1);
    const [attempt] = box.query<{ reason: string }>('SELECT reason FROM attempts');
    expect(attempt!.reason).toBe('lost');
    expect(readdirSync(box.path('out', '.fanout-staging'))).toEqual([]);
  });
});
