import type { Command } from 'commander';
import { withEngine, type GlobalOptions } from '../cli-context.js';

export function registerGather(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('gather')
    .description("run a finished run's gather again, without rerunning its tasks")
    .argument('[run]', 'run id or job name (default: the latest run)')
    .action(async (ref: string | undefined, options: GlobalOptions) => {
      const outcome = await withEngine(options, async (engine) => {
        const run = await engine.resolveRun(ref);
        const result = await engine.gather(run);
        process.stderr.write(`run ${run.id}: gather ${result}${result === 'failed' ? ` (see \`fanout logs ${run.id} gather --stderr\`)` : ''}\n`);
        return result;
      });
      setExitCode(outcome === 'failed' ? 1 : 0);
    });
}
