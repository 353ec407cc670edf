import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launcherPath } from './launcher-binary.js';
import { Launcher, type AttemptResult, type LaunchRequest } from './launcher.js';
import { readResultRecord, RESULT_FILE, STDERR_FILE, STDOUT_FILE } from './result-record.js';

const MB = 1024 * 1024;
const node = `'${process.execPath}'`;

let root: string;
let nextId = 1;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'fanout-launcher-'));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Runs attempts on one launcher and hands back each one's result. */
class Harness {
  readonly launcher: Launcher;
  readonly #waiting = new Map<number, (result: AttemptResult) => void>();

  constructor(env?: NodeJS.ProcessEnv) {
    this.launcher = Launcher.start(env ? { env } : {});
    this.launcher.onDone((id, result) => {
      this.#waiting.get(id)?.(result);
      this.#waiting.delete(id);
    });
  }

  /** Launches and returns the id and the attempt folder at once, the result later. */
  start(command: string, options: Partial<LaunchRequest> = {}): { id: number; dir: string; result: Promise<AttemptResult> } {
    const id = nextId++;
    const dir = options.attemptDir ?? join(root, `attempt-${id}`);
    const result = new Promise<AttemptResult>((resolve) => this.#waiting.set(id, resolve));
    this.launcher.launch({
      id,
      attemptDir: dir,
      cwd: dir,
      memory: null,
      timeMs: null,
      graceMs: 1000,
      env: {},
      ...options,
      command,
    });
    return { id, dir, result };
  }

  run(command: string, options: Partial<LaunchRequest> = {}): Promise<AttemptResult> {
    return this.start(command, options).result;
  }
}

function read(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8');
}

function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

describe('launcher', () => {
  let h: Harness;
  beforeAll(() => {
    h = new Harness();
  });
  afterAll(async () => {
    await h.launcher.close();
  });

  it('finds or builds its binary', () => {
    expect(existsSync(launcherPath())).toBe(true);
  });

  it('runs a command in its cwd with its env, capturing stdout and stderr', async () => {
    const cwd = join(root, 'work', 'deep');
    const { dir, result } = h.start('echo "hello $GREETING"; pwd; echo oops >&2', {
      cwd,
      env: { GREETING: 'world', HOME: '/nowhere' },
    });
    const r = await result;
    expect(r).toMatchObject({ reason: 'ok', exitCode: 0, signal: null, host: hostname() });
    expect(r.endedAt).toBeGreaterThanOrEqual(r.startedAt);
    expect(Math.abs(r.startedAt - Date.now())).toBeLessThan(10_000);
    expect(read(dir, STDOUT_FILE)).toBe(`hello world\n${cwd}\n`);
    expect(read(dir, STDERR_FILE)).toBe('oops\n');
    const record = readResultRecord(dir);
    expect(record).toMatchObject({ ...r, pid: expect.any(Number) });
    expect(record?.error).toBeUndefined();
  });

  it('gives the task the launcher environment, overridden by its own', async () => {
    const { dir, result } = h.start('echo "$PATH|$HOME|$EMPTY."', { env: { HOME: '/h', EMPTY: '' } });
    await result;
    expect(read(dir, STDOUT_FILE)).toBe(`${process.env.PATH}|/h|.\n`);
  });

  it('reports a non-zero exit code', async () => {
    const r = await h.run('exit 7');
    expect(r).toMatchObject({ reason: 'exit', exitCode: 7, signal: null });
  });

  it('reports a signal from elsewhere by name', async () => {
    const r = await h.run('kill -USR1 $$');
    expect(r).toMatchObject({ reason: 'exit', exitCode: null, signal: 'SIGUSR1' });
  });

  it('passes the command text verbatim to sh -c', async () => {
    const command = [
      `printf '[%s]\\n' "a  b" 'c"d' \\$HOME "$(printf 'x\\ty')" '\\\\' "é ü 😀" '$(not run)' \`echo ok\``,
      'cat <<EOF',
      '  heredoc $((6 * 7)) \\n',
      'EOF',
      "echo 'single ''quotes' # trailing comment",
    ].join('\n');
    const { dir, result } = h.start(command, { env: { HOME: '/home/test' } });
    expect((await result).reason).toBe('ok');
    const expected = execFileSync('/bin/sh', ['-c', command], {
      encoding: 'utf8',
      env: { ...process.env, HOME: '/home/test' },
    });
    expect(read(dir, STDOUT_FILE)).toBe(expected);
    expect(expected).toContain('[$(not run)]');
  });

  it('gives the task an empty stdin and default signal dispositions', async () => {
    // The launcher ignores SIGINT and SIGPIPE; a task must not inherit that.
    const { dir, result } = h.start("cat; grep -E '^Sig(Ign|Blk)' /proc/self/status");
    expect((await result).reason).toBe('ok');
    expect(read(dir, STDOUT_FILE)).toBe('SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
  });

  it('kills a task past its memory limit with reason oom', async () => {
    const grow = `${node} -e 'const k = []; setInterval(() => k.push(Buffer.alloc(10 * 1024 * 1024, 1)), 20)'`;
    const started = Date.now();
    const r = await h.run(grow, { memory: 150 * MB, timeMs: 30_000 });
    expect(r).toMatchObject({ reason: 'oom', signal: 'SIGKILL' });
    expect(r.peakMemory).toBeGreaterThan(150 * MB);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('measures the peak memory of a process tree', async () => {
    // `; true` keeps sh alive as the parent instead of exec'ing node.
    const r = await h.run(`${node} -e 'const b = Buffer.alloc(200 * 1024 * 1024, 1); setTimeout(() => b.length, 1000)'; true`);
    expect(r.reason).toBe('ok');
    expect(r.peakMemory).toBeGreaterThanOrEqual(180 * MB);
  });

  it('sums the memory of processes running side by side', async () => {
    // Each child alone stays near 100MB, so only the per-group sum reaches 180MB.
    const hold = `${node} -e 'const b = Buffer.alloc(100 * 1024 * 1024, 1); setTimeout(() => b.length, 1500)'`;
    const r = await h.run(`${hold} & ${hold} & wait`);
    expect(r.reason).toBe('ok');
    expect(r.peakMemory).toBeGreaterThanOrEqual(180 * MB);
  });

  it('measures cpu time', async () => {
    // Spin until the process itself has used 600 ms of CPU, so a busy machine cannot make it use less.
    const r = await h.run(`${node} -e 'const c = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }; while (c() < 600) {}'`);
    expect(r.reason).toBe('ok');
    expect(r.cpuMs).toBeGreaterThanOrEqual(500);
    expect(r.cpuMs).toBeLessThan(r.endedAt - r.startedAt + 1000);
  });

  it('stops a task at its time limit with SIGTERM', async () => {
    const r = await h.run('sleep 10', { timeMs: 300, graceMs: 5_000 });
    expect(r).toMatchObject({ reason: 'timeout', signal: 'SIGTERM', exitCode: null });
    expect(r.endedAt - r.startedAt).toBeGreaterThanOrEqual(290);
    expect(r.endedAt - r.startedAt).toBeLessThan(2_000);
  });

  it('kills a task that ignores SIGTERM once its grace is over', async () => {
    const r = await h.run("trap '' TERM; sleep 10", { timeMs: 400, graceMs: 600 });
    expect(r).toMatchObject({ reason: 'timeout', signal: 'SIGKILL' });
    expect(r.endedAt - r.startedAt).toBeGreaterThanOrEqual(950);
    expect(r.endedAt - r.startedAt).toBeLessThan(3_000);
  });

  it('cancels a task', async () => {
    const { id, result } = h.start('sleep 10', { graceMs: 5_000 });
    setTimeout(() => h.launcher.cancel(id), 200);
    const r = await result;
    expect(r).toMatchObject({ reason: 'cancelled', signal: 'SIGTERM' });
    expect(r.endedAt - r.startedAt).toBeLessThan(2_000);
  });

  it('kills a task at once when forced, even one that ignores SIGTERM', async () => {
    const { id, result } = h.start("trap '' TERM; sleep 10", { graceMs: 10_000 });
    setTimeout(() => h.launcher.cancel(id, { force: true }), 200);
    const r = await result;
    expect(r).toMatchObject({ reason: 'cancelled', signal: 'SIGKILL' });
    expect(r.endedAt - r.startedAt).toBeLessThan(2_000);
  });

  it('ignores cancelling an unknown attempt', async () => {
    h.launcher.cancel(999_999);
    expect((await h.run('true')).reason).toBe('ok');
  });

  it('does not let a background process outlive the attempt', async () => {
    const { dir, result } = h.start('sleep 30 & echo $! > bg.pid; exit 0');
    const r = await result;
    expect(r.reason).toBe('ok');
    expect(r.endedAt - r.startedAt).toBeLessThan(5_000);
    const pid = Number(read(dir, 'bg.pid'));
    expect(pid).toBeGreaterThan(0);
    expect(await waitFor(() => processGone(pid), 2_000)).toBe(true);
  });

  describe('output commit', () => {
    function folders(name: string) {
      const staging = join(root, 'staging', name);
      const final = join(root, 'out', name);
      mkdirSync(join(root, 'out'), { recursive: true });
      return { stagingOut: staging, finalOut: final, env: { OUT: staging } };
    }

    it('moves the staging folder to the final one when the attempt succeeds', async () => {
      const f = folders('fresh');
      const r = await h.run('echo data > "$OUT/result.txt"', f);
      expect(r.reason).toBe('ok');
      expect(readFileSync(join(f.finalOut, 'result.txt'), 'utf8')).toBe('data\n');
      expect(existsSync(f.stagingOut)).toBe(false);
    });

    it('replaces an existing non-empty final folder, leaving the old one at the staging path', async () => {
      const f = folders('replace');
      mkdirSync(f.finalOut, { recursive: true });
      writeFileSync(join(f.finalOut, 'old.txt'), 'old');
      const r = await h.run('echo new > "$OUT/new.txt"', f);
      expect(r.reason).toBe('ok');
      expect(readdirSync(f.finalOut)).toEqual(['new.txt']);
      expect(readdirSync(f.stagingOut)).toEqual(['old.txt']);
    });

    it('leaves the final folder alone when the attempt fails', async () => {
      const f = folders('failed');
      mkdirSync(f.finalOut, { recursive: true });
      writeFileSync(join(f.finalOut, 'old.txt'), 'old');
      const r = await h.run('echo partial > "$OUT/new.txt"; exit 1', f);
      expect(r.reason).toBe('exit');
      expect(readdirSync(f.finalOut)).toEqual(['old.txt']);

      const g = folders('failed-absent');
      expect((await h.run('echo partial > "$OUT/new.txt"; exit 1', g)).reason).toBe('exit');
      expect(existsSync(g.finalOut)).toBe(false);
    });

    it('commits an empty folder when the task removed its staging folder', async () => {
      const f = folders('removed');
      mkdirSync(f.finalOut, { recursive: true });
      writeFileSync(join(f.finalOut, 'old.txt'), 'old');
      const r = await h.run('rm -rf "$OUT"', f);
      expect(r.reason).toBe('ok');
      expect(readdirSync(f.finalOut)).toEqual([]);
    });

    it('reports infra when the output cannot be committed', async () => {
      const f = folders('blocked');
      writeFileSync(f.finalOut, 'a file where the folder should go');
      const { dir, result } = h.start('echo x > "$OUT/x"', f);
      const r = await result;
      expect(r.reason).toBe('infra');
      expect(r.error).toContain(f.finalOut);
      expect(readResultRecord(dir)?.error).toBe(r.error);
    });
  });

  it('reports infra when the attempt folder cannot be created', async () => {
    const blocker = join(root, 'not-a-folder');
    writeFileSync(blocker, '');
    const dir = join(blocker, 'attempt');
    const r = await h.run('true', { attemptDir: dir, cwd: dir });
    expect(r).toMatchObject({ reason: 'infra', exitCode: null, signal: null, peakMemory: 0, cpuMs: 0 });
    expect(r.error).toContain(dir);
    expect(readResultRecord(dir)).toBeNull();
  });

  it('reports infra, with a record, when the cwd cannot be created', async () => {
    const blocker = join(root, 'not-a-folder-either');
    writeFileSync(blocker, '');
    const { dir, result } = h.start('true', { cwd: join(blocker, 'cwd') });
    const r = await result;
    expect(r.reason).toBe('infra');
    expect(r.error).toMatch(/not-a-folder-either.*Not a directory/);
    expect(readResultRecord(dir)).toMatchObject({ reason: 'infra', error: r.error, pid: null });
  });

  it('rejects a request it cannot encode', () => {
    expect(() => h.launcher.launch({ ...request(nextId++), command: 'a\0b' })).toThrow(/NUL/);
    expect(() => h.launcher.launch({ ...request(nextId++), env: { 'A=B': 'c' } })).toThrow(/name/);
    expect(() => h.launcher.launch({ ...request(nextId++), timeMs: 0 })).toThrow(/timeMs/);
  });
});

function request(id: number): LaunchRequest {
  const dir = join(root, `attempt-${id}`);
  return { id, attemptDir: dir, cwd: dir, memory: null, timeMs: null, graceMs: 0, command: 'true', env: {} };
}

describe('launcher lifetime', () => {
  it('finishes running attempts after its stdin closes, then exits', async () => {
    const h = new Harness();
    const { dir, result } = h.start('sleep 1; echo finished');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const exit = await h.launcher.close();
    expect(exit).toMatchObject({ code: 0, signal: null, pending: [] });
    expect((await result).reason).toBe('ok');
    expect(readResultRecord(dir)?.reason).toBe('ok');
    expect(read(dir, STDOUT_FILE)).toBe('finished\n');
  });

  it('leaves result records after its coordinator vanished', async () => {
    // No Launcher class here: both pipes are cut the way a SIGKILLed coordinator cuts them.
    const child = spawn(launcherPath(), [], { detached: true, stdio: ['pipe', 'pipe', 'inherit'] });
    const dir = join(root, 'orphan');
    const fields = ['run', '1', dir, dir, '', '', '0', '0', '0', 'sleep 0.5; echo finished', '0'];
    child.stdin.write(`${fields.join('\0')}\0`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    child.stdout.destroy();
    child.stdin.destroy();
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    expect(await waitFor(() => existsSync(join(dir, RESULT_FILE)), 5_000)).toBe(true);
    expect(readResultRecord(dir)).toMatchObject({ id: 1, reason: 'ok', exitCode: 0 });
    expect(read(dir, STDOUT_FILE)).toBe('finished\n');
    expect(await exited).toBe(0);
  });

  it('cancels every attempt on SIGTERM, then exits', async () => {
    const h = new Harness();
    const a = h.start('sleep 10', { graceMs: 5_000 });
    const b = h.start("trap '' TERM; sleep 10", { graceMs: 300 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const exit = await h.launcher.terminate();
    expect(exit).toMatchObject({ code: 0, pending: [] });
    expect(await a.result).toMatchObject({ reason: 'cancelled', signal: 'SIGTERM' });
    expect(await b.result).toMatchObject({ reason: 'cancelled', signal: 'SIGKILL' });
    expect(readResultRecord(b.dir)?.reason).toBe('cancelled');
  });

  it('reports attempts still pending when it dies', async () => {
    const h = new Harness();
    const { id } = h.start('sleep 0.3');
    await new Promise((resolve) => setTimeout(resolve, 100));
    process.kill(h.launcher.pid, 'SIGKILL');
    const exit = await h.launcher.close();
    expect(exit).toMatchObject({ signal: 'SIGKILL', pending: [id] });
    expect(() => h.launcher.launch(request(nextId++))).toThrow(/closed/);
  });
});
