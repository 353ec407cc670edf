import type { Command } from 'commander';
import { formatDuration } from '../../job/units.js';
import { withReadOnlyEngine, type GlobalOptions } from '../cli-context.js';
import { statusJson } from '../../run-json.js';
import { countsLine } from '../output.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description("a run's state and its tasks counted by state")
    .argument('[run]', 'run id or job name (default: the latest run)')
    .option('--json', 'print as JSON')
    .action((ref: string | undefined, options: GlobalOptions & { json?: boolean }) =>
      withReadOnlyEngine(options, async (engine) => {
        const run = await engine.resolveRun(ref);
        const unattended = (await engine.unattended([run])).get(run.id) ?? null;
        const status = statusJson(run, await engine.store.counts(run.id), unattended);
        if (options.json) {
          process.stdout.write(`${JSON.stringify(status)}\n`);
          return;
        }
        const took = formatDuration((run.endedAt ?? Date.now()) - run.createdAt);
        const gather = run.gatherState ? `\ngather: ${run.gatherState}` : '';
        const stalled = unattended ? `\nnothing drives it: ${unattended.why}; resume it with \`${unattended.resume}\`` : '';
        process.stdout.write(
          `run ${run.id} (${run.job}): ${run.state}${unattended ? ' (unattended)' : ''}, ${took}${stalled}\ntasks: ${status.total} (${countsLine(status.counts)})${gather}\noutputs: ${run.spec.outdir}\n`,
        );
      }),
    );
}
