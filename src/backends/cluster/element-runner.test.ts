import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readResultRecord, STDOUT_FILE } from '../../runner/result-record.js';
import type { AttemptLaunch } from '../backend.js';
import { writeAttemptFiles, writeRunner } from './element-runner.js';

/** The element runner is plain sh: run it here the way a node would, without a scheduler. */
describe('element runner', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'fanout-runner-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function attempt(index: number, command: string, extra: Partial<AttemptLaunch> = {}): AttemptLaunch {
    const attemptDir = join(dir, 'run', `${index}.1`);
    const launch: AttemptLaunch = {
      id: 100 + index,
      attemptDir,
      cwd: attemptDir,
      stagingOut: join(dir, 'out', '.fanout-staging', `1.${index}.1`),
      finalOut: join(dir, 'out', `task${index}`),
      cpus: 1,
      memory: null,
      timeMs: null,
      command,
      env: { FANOUT_OUT: join(dir, 'out', '.fanout-staging', `1.${index}.1`), FANOUT_NOTE: "it's\ntwo lines" },
      ...extra,
    };
    writeAttemptFiles(launch, 1000);
    return launch;
  }

  /** Run one element as a node would; what the runner itself wrote to stderr (its element log). */
  function runElement(lines: string[], element = 1, env: NodeJS.ProcessEnv = process.env): string {
    const runner = writeRunner(join(dir, 'run'));
    writeFileSync(join(dir, 'run', 'elements'), `${lines.join('\n')}\n`);
    const ran = spawnSync('/bin/sh', [runner, join(dir, 'run'), join(dir, 'run', 'elements'), String(element)], { encoding: 'utf8', env });
    if (ran.status !== 0) throw new Error(`the runner exited ${ran.status}: ${ran.stderr}`);
    return ran.stderr;
  }

  it('runs packed attempts one after another, each with its log, record and committed output', () => {
    const ok = attempt(0, 'echo "note: $FANOUT_NOTE"; echo data > "$FANOUT_OUT/result"');
    const failing = attempt(1, 'echo broken >&2; exit 3');
    runElement(['0.1 1.1']);
    expect(readResultRecord(ok.attemptDir)).toMatchObject({ id: 100, reason: 'ok', exitCode: 0, signal: null, pid: null });
    expect(readFileSync(join(ok.attemptDir, STDOUT_FILE), 'utf8')).toBe("note: it's\ntwo lines\n");
    expect(readFileSync(join(dir, 'out', 'task0', 'result'), 'utf8')).toBe('data\n');
    expect(readResultRecord(failing.attemptDir)).toMatchObject({ id: 101, reason: 'exit', exitCode: 3 });
    expect(existsSync(join(dir, 'out', 'task1'))).toBe(false);
  });

  it('runs the line of its own element only', () => {
    const first = attempt(0, 'true');
    const second = attempt(1, 'true');
    runElement(['0.1', '1.1'], 2);
    expect(readResultRecord(first.attemptDir)).toBeNull();
    expect(readResultRecord(second.attemptDir)).toMatchObject({ reason: 'ok' });
  });

  it('leaves its own log clean: every function it calls is defined by then', () => {
    attempt(0, 'true');
    expect(runElement(['0.1'])).toBe('');
  });

  it('stops an attempt past its time as timeout', () => {
    const slow = attempt(0, 'sleep 30', { timeMs: 1000 });
    const started = Date.now();
    runElement(['0.1']);
    expect(readResultRecord(slow.attemptDir)).toMatchObject({ reason: 'timeout' });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('records an attempt killed past its time with the signal that ended it', () => {
    const stubborn = attempt(0, "trap '' TERM; sleep 30", { timeMs: 1000 });
    runElement(['0.1']);
    expect(readResultRecord(stubborn.attemptDir)).toMatchObject({ reason: 'timeout', exitCode: null, signal: expect.stringMatching(/^SIG/) });
  });

  it('records a command killed by a signal with the signal', () => {
    const killed = attempt(0, 'kill -9 $$');
    runElement(['0.1']);
    expect(readResultRecord(killed.attemptDir)).toMatchObject({ reason: 'exit', exitCode: null, signal: 'SIGKILL' });
  });

  it('replaces an earlier output only when the new attempt succeeds', () => {
    mkdirSync(join(dir, 'out', 'task0'), { recursive: true });
    writeFileSync(join(dir, 'out', 'task0', 'old'), 'old');
    attempt(0, 'echo new > "$FANOUT_OUT/new"');
    runElement(['0.1']);
    expect(existsSync(join(dir, 'out', 'task0', 'old'))).toBe(false);
    expect(readFileSync(join(dir, 'out', 'task0', 'new'), 'utf8')).toBe('new\n');
  });

  it('measures the cpu time its command used', () => {
    const busy = attempt(
      0,
      `python3 -c 'import time; end = time.process_time() + 0.5
while time.process_time() < end: pass'`,
    );
    runElement(['0.1']);
    const record = readResultRecord(busy.attemptDir)!;
    expect(record.reason).toBe('ok');
    expect(record.cpuMs).toBeGreaterThanOrEqual(400);
    expect(record.cpuMs).toBeLessThan(5000);
  });

  // This machine's test elements have no memory cgroup of their own, so GNU time measures.
  it('measures the peak memory of its command where the node has GNU time', () => {
    const hog = attempt(0, `python3 -c 'b = bytearray(80 * 2**20); b[::4096] = b"x" * len(b[::4096])'`);
    runElement(['0.1']);
    const record = readResultRecord(hog.attemptDir)!;
    expect(record.reason).toBe('ok');
    expect(record.peakMemory).toBeGreaterThanOrEqual(80 * 2 ** 20);
  });

  it('records peak memory as unknown (null, not 0) where nothing on the node can measure it', () => {
    // A PATH with the tools the runner needs but no GNU time, as on a node without it.
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    for (const tool of ['sh', 'sed', 'awk', 'date', 'hostname', 'uname', 'cat', 'mv', 'rm', 'mkdir', 'timeout', 'true']) {
      const found = spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      if (found.startsWith('/')) symlinkSync(found, join(bin, tool));
    }
    const plain = attempt(0, 'echo hi');
    runElement(['0.1'], 1, { ...process.env, PATH: bin });
    expect(readResultRecord(plain.attemptDir)).toMatchObject({ reason: 'ok', peakMemory: null });
  });

  it('does not run an attempt again when the scheduler restarts its element', () => {
    const once = attempt(0, `echo ran >> ${join(dir, 'count')}`);
    runElement(['0.1']);
    runElement(['0.1']);
    expect(readFileSync(join(dir, 'count'), 'utf8')).toBe('ran\n');
    expect(readResultRecord(once.attemptDir)).toMatchObject({ reason: 'ok' });
  });
});
