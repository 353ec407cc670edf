import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { stagingOut } from '../../engine/home-layout.js';
import { taskValues } from '../../engine/plan-job.js';
import { renderTemplate } from '../../job/template.js';
import { planOptions, withReadOnlyEngine, withPlanFlags, type GlobalOptions, type PlanFlags } from '../cli-context.js';

export function registerRender(program: Command): void {
  withPlanFlags(
    program
      .command('render')
      .description('print the exact command a task would run; with a cluster backend, the submission script of the first array')
      .argument('<file>', 'the job file')
      .option('--task <name>', 'which task (default: the first)'),
  ).action((file: string, options: GlobalOptions & PlanFlags & { task?: string }) =>
    withReadOnlyEngine(options, async (engine) => {
      const planned = await engine.plan(file, planOptions(options));
      const script = await engine.submissionScript(planned);
      if (script !== null) {
        process.stdout.write(script);
        return;
      }
      const task = options.task === undefined ? planned.tasks[0] : planned.tasks.find((t) => t.name === options.task);
      if (!task) throw new UserError(`job ${planned.spec.name} has no task "${options.task}"`, 'run `fanout validate` to list task names');
      const nextRun = ((await engine.store.listRuns({ limit: 1 }))[0]?.id ?? 0) + 1;
      const out = stagingOut(planned.spec.outdir, nextRun, task.index, 1);
      process.stdout.write(`${renderTemplate(planned.command, taskValues(planned.spec, task.vars, task.index, task.name, out))}\n`);
    }),
  );
}
