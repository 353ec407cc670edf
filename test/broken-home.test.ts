import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mayMount } from './mounts.mjs';
import { Sandbox, type CliResult } from './harness.js';

// Read-only and full disks are real mounts; without the right to mount, these are skipped (see mounts.ts).
const needsMount = it.skipIf(!mayMount());

/** One clear line on stderr, exit 2: no stack trace, no "internal error". */
function clearError(result: CliResult, ...patterns: RegExp[]): string {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr).not.toMatch(/internal error|\n\s+at /);
  const line = result.stderr.trim().split('\n').at(-1)!;
  expect(line).toMatch(/^fanout: /);
  for (const pattern of patterns) expect(line).toMatch(pattern);
  return line;
}

describe('a broken fanout home', () => {
  let box: Sandbox;
  const mounts: string[] = [];

  function mount(dir: string, ...args: string[]): void {
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', [...args, dir]);
    mounts.push(dir);
  }

  beforeEach(() => {
    box = new Sandbox();
    box.write('job.yaml', 'command: echo {{ item }} > {{ out }}/x\ntasks:\n  each: [a, b]\n');
  });
  afterEach(() => {
    for (const dir of mounts.splice(0).reverse()) execFileSync('umount', [dir]);
    box.cleanup();
  });

  needsMount('a new home on a read-only filesystem', async () => {
    mount(box.path('ro'), '-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs');
    clearError(await box.run(['run', 'job.yaml', '--home', 'ro/home']), /the fanout home .*ro\/home cannot be created/, /--home/);
    clearError(await box.run(['run', 'job.yaml', '--home', 'ro']), /the store .*ro\/state\.db cannot be opened for writing/, /--home/);
  });

  needsMount('a home with a store, read-only', async () => {
    expect((await box.run(['run', 'job.yaml', '--home', 'home'])).code).toBe(0);
    mount(box.path('readonly'), '--bind', box.path('home'));
    execFileSync('mount', ['-o', 'remount,ro,bind', box.path('readonly')]);
    for (const command of [['run', 'job.yaml'], ['status']]) {
      clearError(await box.run([...command, '--home', 'readonly']), /the store .*readonly\/state\.db cannot be opened for writing/, /writable/);
    }
  });

  needsMount('a home on a full disk, before the start', async () => {
    mount(box.path('disk'), '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs');
    writeFileSync(box.path('disk', 'ballast'), Buffer.alloc(1 << 20));
    clearError(await box.run(['run', 'job.yaml', '--home', 'disk/home']), /disk\/home\/state\.db .*the disk is full/, /free space/);
  });

  needsMount('a disk that fills during a run ends it with one line; after freeing space the same command finishes it', async () => {
    mount(box.path('disk'), '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs');
    // Task 3 fills the home's disk once (its folder is <home>/work/<run>/<index>.<attempt>).
    const fill = 'if [ {{ item }} = 3 ] && [ ! -e ../../../filled ]; then touch ../../../filled; head -c 2000000 /dev/zero > ../../../ballast; fi';
    const items = Array.from({ length: 12 }, (_, i) => i + 1).join(', ');
    box.write('fill.yaml', `command: ${fill}; echo {{ item }} > {{ out }}/x\ntasks:\n  each: [${items}]\nconcurrency: 1\nretry:\n  max: 2\n`);
    clearError(await box.run(['run', 'fill.yaml', '--home', 'disk/home']), /disk is full|ENOSPC/, /free space/, /run the same command again/);

    rmSync(box.path('disk', 'home', 'ballast'));
    const resumed = await box.run(['run', 'fill.yaml', '--home', 'disk/home']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const status = JSON.parse((await box.run(['status', '--json', '--home', 'disk/home'])).stdout);
    expect(status).toMatchObject({ state: 'succeeded', counts: { succeeded: 12, failed: 0 } });
  });

  it('a store of random bytes', async () => {
    expect((await box.run(['run', 'job.yaml'])).code).toBe(0);
    writeFileSync(box.path('.fanout', 'state.db'), randomBytes(8192));
    for (const command of [['run', 'job.yaml'], ['status'], ['runs']]) {
      clearError(await box.run(command), /the store .*state\.db is damaged: file is not a database/, /restore .* from a backup, or move the home aside/);
    }
  });

  it('a store truncated to half its size', async () => {
    const items = Array.from({ length: 300 }, (_, i) => i).join(', ');
    box.write('many.yaml', `command: echo {{ item }}\ntasks:\n  each: [${items}]\n`);
    expect((await box.run(['run', 'many.yaml'])).code).toBe(0);
    const store = box.path('.fanout', 'state.db');
    truncateSync(store, Math.floor(statSync(store).size / 2));
    for (const command of [['tasks'], ['run', 'many.yaml']]) {
      clearError(await box.run(command), /the store .*state\.db is damaged/, /restore .* from a backup/);
    }
  });

  it('a store emptied to 0 bytes beside attempt folders is not taken for a new store', async () => {
    expect((await box.run(['run', 'job.yaml'])).code).toBe(0);
    expect(readdirSync(box.path('.fanout', 'work')).length).toBeGreaterThan(0);
    writeFileSync(box.path('.fanout', 'state.db'), '');
    for (const command of [['run', 'job.yaml'], ['status']]) {
      clearError(await box.run(command), /state\.db is empty \(0 bytes\), but .*\.fanout\/work holds the attempt folders/, /restore .* or move the home aside/);
    }
    expect(statSync(box.path('.fanout', 'state.db')).size).toBe(0);
  });

  it('an empty store file in a home without attempt folders is a new store', async () => {
    mkdirSync(box.path('.fanout'));
    writeFileSync(box.path('.fanout', 'state.db'), '');
    expect((await box.run(['run', 'job.yaml'])).code).toBe(0);
  });
});
