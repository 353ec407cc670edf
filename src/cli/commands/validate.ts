import type { Command } from 'commander';
import { collect, parseSets, withEngine, type GlobalOptions } from '../cli-context.js';
import { printable } from '../output.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check a job file and list its tasks, without running anything')
    .argument('<file>', 'the job file')
    .option('--set <key=value>', 'override a value of `vars` (repeatable)', collect, [])
    .action((file: string, options: GlobalOptions & { set: string[] }) =>
      withEngine(options, async (engine) => {
        const planned = await engine.plan(file, parseSets(options.set));
        const names = planned.tasks.slice(0, 10).map((t) => printable(t.name));
        const more = planned.tasks.length > 10 ? `, … (${planned.tasks.length - 10} more)` : '';
        process.stdout.write(
          `${file}: ok, job ${planned.spec.name}, ${planned.tasks.length} task(s) from ${planned.spec.tasks.kind}: ${names.join(', ')}${more}\n`,
        );
      }),
    );
}
