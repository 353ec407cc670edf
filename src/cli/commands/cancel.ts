import type { Command } from 'commander';
import { withEngine, type GlobalOptions } from '../cli-context.js';

export function registerCancel(program: Command): void {
  program
    .command('cancel')
    .description('stop a run: no new tasks start, running ones are terminated')
    .argument('[run]', 'run id or job name (default: the latest run)')
    .action((ref: string | undefined, options: GlobalOptions) =>
      withEngine(options, async (engine) => {
        const run = await engine.resolveRun(ref);
        const outcome = await engine.cancel(run);
        const message = {
          signalled: `run ${run.id}: asked its fanout (pid ${run.coordinator?.pid}) to stop; running tasks are being terminated`,
          settled: `run ${run.id} cancelled`,
          'not-running': `run ${run.id} is not running (${run.state})`,
        }[outcome];
        process.stderr.write(`${message}\n`);
      }),
    );
}
