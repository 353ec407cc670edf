import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { positiveInteger, withEngine, type GlobalOptions, type MachineOptions } from '../cli-context.js';
import { follow } from './run.js';

export function registerRetry(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('retry')
    .description('run the failed and cancelled tasks of a run again (only failed with --failed)')
    .argument('[run]', 'run id or job name (default: the latest run)')
    .option('--failed', 'only tasks that failed')
    .option('--concurrency <n>', 'the most tasks running at once')
    .option('--json', 'print the final status as JSON')
    .option('--detach', 'for a run on the workers backend: requeue and return at once')
    .option('--cpus <n>', 'cpus fanout may use (default: all)')
    .option('--memory <size>', 'memory fanout may use (default: all)')
    .option('--grace <duration>', 'between terminate and kill when stopping a task (default 10s)')
    .action(async (ref: string | undefined, options: GlobalOptions & MachineOptions & { failed?: boolean; concurrency?: string; json?: boolean; detach?: boolean }) => {
      const code = await withEngine(options, async (engine) => {
        const run = await engine.resolveRun(ref);
        const counts = await engine.store.counts(run.id);
        const waiting = counts.failed + (options.failed ? 0 : counts.cancelled);
        if (waiting === 0 && run.state !== 'running') {
          throw new UserError(`run ${run.id} has no ${options.failed ? 'failed' : 'failed or cancelled'} tasks to retry`);
        }
        const handle = await engine.retry(run, {
          failedOnly: options.failed === true,
          concurrency: options.concurrency === undefined ? undefined : positiveInteger(options.concurrency, '--concurrency'),
        });
        if (options.detach && handle.interrupt === 'detaches') handle.stop();
        return follow(handle, options.json === true);
      });
      setExitCode(code);
    });
}
