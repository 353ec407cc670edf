import { createReadStream, existsSync } from 'node:fs';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { isObjectStoreUri, joinLocation } from '../../storage/location.js';
import { storageFor } from '../../storage/open-storage.js';
import { STDERR_FILE, STDOUT_FILE } from '../../runner/result-record.js';
import { positiveInteger, withEngine, type GlobalOptions } from '../cli-context.js';

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("print a task attempt's stdout (or stderr); `gather` names the gather step")
    .argument('<run-or-task>', 'run id or job name, then the task; or just the task (latest run)')
    .argument('[task]')
    .option('--attempt <n>', 'which attempt (default: the last)')
    .option('--stderr', 'print stderr instead of stdout')
    .action((first: string, second: string | undefined, options: GlobalOptions & { attempt?: string; stderr?: boolean }) =>
      withEngine(options, async (engine) => {
        const run = await engine.resolveRun(second === undefined ? undefined : first);
        const name = second ?? first;
        const attempts = await engine.attemptsNamed(run, name);
        if (attempts === null) throw new UserError(`run ${run.id} has no task "${name}"`, `see \`fanout tasks ${run.id}\``);
        if (attempts.length === 0) throw new UserError(`task "${name}" of run ${run.id} has not run yet`);
        const wanted = options.attempt === undefined ? attempts.length : positiveInteger(options.attempt, '--attempt');
        const attempt = attempts.find((a) => a.attempt === wanted);
        if (!attempt) throw new UserError(`task "${name}" has no attempt ${wanted}`, `it has ${attempts.length}`);
        const file = joinLocation(attempt.dir, options.stderr ? STDERR_FILE : STDOUT_FILE);
        const log = await openLog(file);
        if (!log) {
          const why = isObjectStoreUri(file) && attempt.state === 'running' ? 'a worker uploads it when the attempt ends' : 'the attempt may not have started';
          throw new UserError(`no log at ${file}`, why);
        }
        await new Promise<void>((resolve, reject) => {
          log.on('error', reject).on('end', resolve).pipe(process.stdout, { end: false });
        });
      }),
    );
}

/** A log file, from a folder or from object storage; null when there is none. */
async function openLog(location: string): Promise<NodeJS.ReadableStream | null> {
  if (isObjectStoreUri(location)) return storageFor(location).openRead(location);
  return existsSync(location) ? createReadStream(location) : null;
}
