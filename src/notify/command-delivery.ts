import { spawn } from 'node:child_process';

/**
 * Run a `notify.command` with one alert's JSON on stdin, under a time limit. Like a webhook, a
 * failure is a result, never an exception. It is not retried: a command that fails will likely
 * fail the same way again, and a retry could repeat what it did before it failed.
 */

export interface CommandOptions {
  /** Stops the command (the whole process group) early, e.g. when the process must exit. */
  signal: AbortSignal;
  cwd: string;
  env: Record<string, string>;
  timeLimitMs?: number;
}

export type CommandOutcome = { delivered: true } | { delivered: false; error: string };

const COMMAND_TIME_LIMIT_MS = 30_000;
/** Between SIGTERM and SIGKILL when the command is stopped. */
const KILL_GRACE_MS = 2_000;
/** The end of the command's stderr kept to explain a failure. */
const STDERR_KEPT = 500;

export function runAlertCommand(command: string, body: string, options: CommandOptions): Promise<CommandOutcome> {
  const timeLimitMs = options.timeLimitMs ?? COMMAND_TIME_LIMIT_MS;
  return new Promise((resolve) => {
    let stderr = '';
    let stoppedBecause: string | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    const child = spawn('/bin/sh', ['-c', command], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      // Its own process group, so a stop reaches whatever the command started.
      detached: true,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    const stop = (why: string) => {
      if (stoppedBecause !== null || child.pid === undefined) return;
      stoppedBecause = why;
      signalGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), KILL_GRACE_MS);
    };
    const limit = setTimeout(() => stop(`it ran longer than its limit of ${timeLimitMs / 1000}s`), timeLimitMs);
    const onAbort = () => stop('the delivery was stopped');
    options.signal.addEventListener('abort', onAbort, { once: true });
    if (options.signal.aborted) onAbort();

    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-STDERR_KEPT);
    });
    // A command that does not read its stdin closes it early: that is its right, not a failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(body);

    const settle = (outcome: CommandOutcome) => {
      clearTimeout(limit);
      clearTimeout(killTimer);
      options.signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    child.on('error', (error) => settle({ delivered: false, error: `it could not be started (${error.message})` }));
    child.on('close', (code, signal) => {
      if (stoppedBecause === null && code === 0) return settle({ delivered: true });
      const how = stoppedBecause ?? (signal ? `it was killed by ${signal}` : `it exited with ${code}`);
      const said = stderr.trim() ? `; its stderr ends: ${stderr.trim().split('\n').slice(-3).join(' / ')}` : '';
      settle({ delivered: false, error: `${how}${said}` });
    });
  });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}
