import { execFile } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { MIB } from '../../job/units.js';

/**
 * Every call fanout makes to a scheduler's command-line tools goes through here: one place that
 * runs them, counts them (the benchmark reports the count; fewer is kinder to the controller)
 * and, when given a log file, writes one line per call so a user can see what fanout asked.
 */

export interface CommandOutput {
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandNotFound extends Error {
  override name = 'CommandNotFound';
  constructor(readonly command: string) {
    super(`${command}: command not found`);
  }
}

export class SchedulerCommands {
  /** Calls per command name since this object was made. */
  readonly counts = new Map<string, number>();
  logFile: string | null = null;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  async run(command: string, args: string[], options: { timeoutMs?: number; cwd?: string } = {}): Promise<CommandOutput> {
    this.counts.set(command, (this.counts.get(command) ?? 0) + 1);
    const started = Date.now();
    const output = await new Promise<CommandOutput>((resolve, reject) => {
      execFile(
        command,
        args,
        { env: this.env, cwd: options.cwd, maxBuffer: 256 * MIB, timeout: options.timeoutMs ?? 120_000, encoding: 'utf8' },
        (error, stdout, stderr) => {
          if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') return reject(new CommandNotFound(command));
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
    if (this.logFile) {
      const shown = args.length > 12 ? [...args.slice(0, 12), `… (${args.length} arguments)`] : args;
      const line = `${new Date(started).toISOString()} ${Date.now() - started}ms exit ${output.code}: ${command} ${shown.join(' ')}\n`;
      try {
        appendFileSync(this.logFile, line);
      } catch {
        // The log is a convenience; a full or vanished disk must not stop the run over it.
      }
    }
    return output;
  }

  /** Total calls, for the benchmark's report. */
  total(): number {
    let sum = 0;
    for (const count of this.counts.values()) sum += count;
    return sum;
  }
}

/** The job id a submission printed first (`123`, `123;cluster`, `123.1-10:1`); throws with its words if none. */
export function submittedJobId(output: CommandOutput): string {
  const jobId = /^(\d+)/.exec(output.stdout.trim())?.[1];
  if (output.code !== 0 || jobId === undefined) throw new SubmitError(said(output));
  return jobId;
}

/** A check-only submission's complaint, or null when it passed. */
export function complaint(output: CommandOutput): string | null {
  return output.code === 0 ? null : said(output);
}

/** What a failed command said, in one line, for error messages. */
export function said(output: CommandOutput): string {
  const text = (output.stderr.trim() || output.stdout.trim() || `exit code ${output.code}`).replace(/\s*\n\s*/g, '; ');
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}

/** A scheduler refused a submission; the message is its own words. */
export class SubmitError extends Error {
  override name = 'SubmitError';
}
