import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { stagingOut } from '../../engine/home-layout.js';
import { taskValues } from '../../engine/plan-job.js';
import { renderSoftwareEnvironment, withSetup } from '../../engine/software-environment.js';
import type { DeclaredOutput, Resources } from '../../job/job-spec.js';
import { shellQuote } from '../../job/shell-quote.js';
import { formatBytes, formatDuration } from '../../job/units.js';
import { renderTemplate } from '../../job/template.js';
import { isObjectStoreUri } from '../../storage/location.js';
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
      const values = taskValues(planned.spec, task.vars, task.index, task.name, out);
      // Comments first, so the output still runs as a script: where the task runs and what each
      // value became (relative paths resolved), which is what a task that cannot find a file got wrong.
      const folder = engine.layout.attemptDir({ id: nextRun, spec: planned.spec }, task.index, 1);
      const environment = renderSoftwareEnvironment(planned.spec, values);
      const lines = [
        `# task ${task.name}, attempt 1, runs in its own folder: ${isObjectStoreUri(folder) ? `a scratch folder of its worker (kept at ${folder})` : folder}`,
        ...Object.entries(values).map(([key, value]) => `# {{ ${key} }} = ${(typeof value === 'string' ? value : value.join(' ')).replace(/\n/g, '\\n')}`),
        describeResources(task.resources),
        ...declaredOutputs(planned.spec.outputs ?? []),
        ...envExports(environment.env),
        withSetup(environment.setup, renderTemplate(planned.command, values)),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    }),
  );
}

/** The task's own resources (they may differ per task), as its first attempt gets them. */
function describeResources({ cpus, memory, timeMs }: Resources): string {
  const limits = [
    `${cpus} cpu${cpus === 1 ? '' : 's'}`,
    memory === null ? 'memory not limited' : `memory ${formatBytes(memory)}`,
    timeMs === null ? 'time not limited' : `time ${formatDuration(timeMs)}`,
  ];
  return `# resources: ${limits.join(', ')}`;
}

/** The job's `env:` as the task gets it, as lines that give a shell running this output the same. */
function envExports(env: Readonly<Record<string, string>>): string[] {
  const names = Object.keys(env);
  if (names.length === 0) return [];
  return ["# env: (in the task's environment, not part of its command)", ...names.map((name) => `export ${name}=${shellQuote(env[name]!)}`)];
}

/** The check an attempt makes after its command exits 0 (engine/output-check.ts), as a comment. */
function declaredOutputs(outputs: readonly DeclaredOutput[]): string[] {
  if (outputs.length === 0) return [];
  return [`# after it exits 0, {{ out }} must hold: ${outputs.map((o) => (o.nonEmpty ? `${o.path} (not empty)` : o.path)).join(', ')}`];
}
