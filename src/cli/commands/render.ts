import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { stagingOut } from '../../engine/home-layout.js';
import { taskValues } from '../../engine/plan-job.js';
import { renderTemplate } from '../../spec/template.js';
import { collect, parseSets, withEngine, type GlobalOptions } from '../cli-context.js';

export function registerRender(program: Command): void {
  program
    .command('render')
    .description('print the exact command a task would run, without running it')
    .argument('<file>', 'the job file')
    .option('--task <name>', 'which task (default: the first)')
    .option('--set <key=value>', 'override a value of `vars` (repeatable)', collect, [])
    .action((file: string, options: GlobalOptions & { task?: string; set: string[] }) =>
      withEngine(options, async (engine) => {
        const planned = await engine.plan(file, parseSets(options.set));
        const task = options.task === undefined ? planned.tasks[0] : planned.tasks.find((t) => t.name === options.task);
        if (!task) throw new UserError(`job ${planned.spec.name} has no task "${options.task}"`, 'run `fanout validate` to list task names');
        const nextRun = (engine.store.listRuns({ limit: 1 })[0]?.id ?? 0) + 1;
        const out = stagingOut(planned.spec.outdir, nextRun, task.index, 1);
        process.stdout.write(`${renderTemplate(planned.command, taskValues(planned.spec, task.vars, task.index, task.name, out))}\n`);
      }),
    );
}
