import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

/** The built CLI: integration suites run fanout exactly as users do. */
const FANOUT_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'fanout.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A scratch folder for one test: job files, data, `.fanout/` and outputs all live in it. */
export class Sandbox {
  readonly dir: string;
  private readonly children = new Set<ChildProcess>();

  constructor(prefix = 'fanout-test-') {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  write(relative: string, content: string): string {
    const file = this.path(relative);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
    return file;
  }

  /** Run `fanout ...args` in the sandbox and wait for it. */
  run(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; asNobody?: boolean } = {}): Promise<CliResult> {
    const child = this.start(args, options);
    return finished(child, options.timeoutMs ?? 120_000);
  }

  /** Start `fanout ...args` without waiting; the test stops it or awaits `finished`. */
  start(args: string[], options: { env?: NodeJS.ProcessEnv; asNobody?: boolean } = {}): ChildProcess {
    const [command, ...prefix] = options.asNobody ? this.asNobody() : [process.execPath];
    const child = spawn(command!, [...prefix, FANOUT_BIN, ...args], {
      cwd: this.dir,
      env: { ...process.env, FANOUT_HOME: undefined, FANOUT_PROGRESS_SECONDS: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    capture(child);
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /**
   * The command that runs node as the unprivileged user nobody when the tests run as root (as
   * here and in CI), for whom permissions do not apply; the sandbox is opened to it.
   */
  private asNobody(): string[] {
    if (process.getuid?.() !== 0) return [process.execPath];
    chmodSync(this.dir, 0o755);
    return ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath];
  }

  /** Read the store directly, as a second opinion on what the CLI says. */
  query<T = Record<string, unknown>>(sql: string, ...params: unknown[]): T[] {
    const db = new Database(this.path('.fanout', 'state.db'), { readonly: true });
    try {
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  }

  /** Stop anything the test left running (by pid), then remove the folder. */
  cleanup(): void {
    for (const child of this.children) child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const outputs = new WeakMap<ChildProcess, { stdout: string; stderr: string }>();

/** Collect a child's output from the start, so `finished` has all of it whenever it is called. */
function capture(child: ChildProcess): void {
  const output = { stdout: '', stderr: '' };
  outputs.set(child, output);
  child.stdout?.on('data', (chunk) => (output.stdout += chunk));
  child.stderr?.on('data', (chunk) => (output.stderr += chunk));
}

export function finished(child: ChildProcess, timeoutMs = 120_000): Promise<CliResult> {
  const output = outputs.get(child) ?? { stdout: '', stderr: '' };
  return new Promise((resolvePromise, reject) => {
    const settle = () => setImmediate(() => resolvePromise({ code: child.exitCode, signal: child.signalCode, ...output }));
    // It may have exited already (a test that kills it can be too late).
    if (child.exitCode !== null || child.signalCode !== null) return settle();
    const { stdout, stderr } = output;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fanout did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', () => {
      clearTimeout(timer);
      // Let the pipes drain what the process wrote before it exited.
      settle();
    });
  });
}

/** Poll until `check` returns a value, or fail after `timeoutMs`. */
export async function waitFor<T>(check: () => T | undefined | null | false, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = check();
      if (value) return value;
    } catch {
      // Not there yet (the store may not exist yet): try again.
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The process ids that running tasks wrote to `pid` in their attempt folders (`echo $$ > pid`),
 * waiting until every recorded attempt has written one: attempts are recorded before they start.
 */
export async function taskPids(box: Sandbox): Promise<number[]> {
  const dirs = await waitFor(
    () => {
      const recorded = box.query<{ dir: string }>('SELECT dir FROM attempts WHERE idx >= 0 ORDER BY idx, attempt').map((a) => a.dir);
      return recorded.length > 0 && recorded;
    },
    20_000,
    'an attempt to be recorded',
  );
  return waitFor(
    () => {
      const pids = dirs.map((dir) => Number(readFileSync(join(dir, 'pid'), 'utf8')));
      return pids.every((pid) => pid > 0) && pids;
    },
    20_000,
    'every task to write its pid',
  );
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `waitFor` for checks that must await (a CLI call, a query over the network). */
export async function waitForAsync<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
