import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { stagingOut } from '../../engine/home-layout.js';
import { taskImageIdentity, taskValues } from '../../engine/plan-job.js';
import { renderSoftwareEnvironment, withSetup } from '../../engine/software-environment.js';
import { bareTaskLaunch } from '../../engine/task-launch.js';
import { containerCommandLine, containerRun } from '../../container/container-command.js';
import type { ContainerRun } from '../../container/container-engines.js';
import type { ImageIdentity } from '../../container/container-plan.js';
import type { ContainerPlan, DeclaredOutput, Resources } from '../../job/job-spec.js';
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
      const plan = planned.spec.containerPlan ?? null;
      if (script !== null && plan === null) {
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
      ];
      if (plan === null) {
        lines.push(withSetup(environment.setup, renderTemplate(planned.command, values)));
      } else {
        // The attempt as the runner gets it (setup lines and the output check included), then in its container.
        const places = { attemptDir: folder, stagingOut: out, finalOut: task.out };
        const bare = bareTaskLaunch(planned.spec, planned.command, { id: 0, runId: nextRun, task: { ...task, ...task.resources }, attempt: 1 }, places);
        const run = containerRun(bare.launch, plan, bare.values, planned.spec.baseDir);
        lines.push(...containerLines(plan, run, taskImageIdentity(planned.spec, task), bare.launch.command, [folder, out]), containerCommandLine(plan, run));
      }
      if (script !== null) {
        // The submission script stays what runs; the container line a node runs for this task follows it, commented out.
        process.stdout.write(`${script.replace(/\n?$/, '\n')}\n# on the node, task ${task.name}'s attempt starts its container so:\n`);
        process.stdout.write(
          `${lines
            .flatMap((line) => line.split('\n'))
            .map((line) => (line.startsWith('#') ? line : `#   ${line}`))
            .join('\n')}\n`,
        );
        return;
      }
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

/**
 * What the container line below them means, as comments (the engine, the image and its identity,
 * what is mounted), then the folders the runner creates before it starts the container: the
 * engine refuses to mount a folder that does not exist, so without them the line would not run.
 */
function containerLines(plan: ContainerPlan, run: ContainerRun, identity: ImageIdentity | null, command: string, folders: string[]): string[] {
  const mounts = run.mounts.map((m) => `${m.source === m.target ? m.source : `${m.source} → ${m.target}`}${m.readOnly ? ' (read-only)' : ''}`);
  return [
    `# runs in a container: engine ${plan.engine}, image ${run.image}, identity ${identity?.imageDigest ?? 'unknown'}, pull ${plan.pull}`,
    `# mounts: ${mounts.join(', ')}`,
    ...command.split('\n').map((line, i) => `# ${i === 0 ? 'its command, run inside by /bin/sh -c: ' : '  '}${line}`),
    // A pull worker with an s3:// workdir runs the attempt in scratch folders of its own instead.
    folders.some(isObjectStoreUri)
      ? '# a pull worker runs it with scratch folders of its own in place of the s3:// paths below'
      : `mkdir -p ${folders.map(shellQuote).join(' ')}`,
  ];
}
