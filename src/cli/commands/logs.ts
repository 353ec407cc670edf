import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { positiveInteger, withReadOnlyEngine, type GlobalOptions } from '../cli-context.js';

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("print a task attempt's stdout (or stderr); `gather` names the gather step")
    .argument('<run-or-task>', 'run id or job name, then the task; or just the task (latest run)')
    .argument('[task]')
    .option('--attempt <n>', 'which attempt (default: the last)')
    .option('--stderr', 'print stderr instead of stdout')
    .action((first: string, second: string | undefined, options: GlobalOptions & { attempt?: string; stderr?: boolean }) =>
      withReadOnlyEngine(options, async (engine) => {
        const run = await engine.resolveRun(second === undefined ? undefined : first);
        const name = second ?? first;
        const attempts = await engine.attemptsNamed(run, name);
        if (attempts === null) throw new UserError(`run ${run.id} has no task "${name}"`, `see \`fanout tasks ${run.id}\``);
        if (attempts.length === 0) throw new UserError(`task "${name}" of run ${run.id} has not run yet`);
        const wanted = options.attempt === undefined ? attempts.length : positiveInteger(options.attempt, '--attempt');
        const attempt = attempts.find((a) => a.attempt === wanted);
        if (!attempt) throw new UserError(`task "${name}" has no attempt ${wanted}`, `it has ${attempts.length}`);
        const files = engine.files;
        const stream = options.stderr ? 'stderr' : 'stdout';
        const log = await files.openLog(attempt.dir, stream);
        if (!log) {
          const why =
            files.arriveWhenEnded(attempt.dir) && attempt.state === 'running' ? 'a worker uploads it when the attempt ends' : 'the attempt may not have started';
          throw new UserError(`no log at ${files.logLocation(attempt.dir, stream)}`, why);
        }
        await new Promise<void>((resolve, reject) => {
          log.on('error', reject).on('end', resolve).pipe(process.stdout, { end: false });
        });
      }),
    );
}
