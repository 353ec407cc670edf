import type { Command } from 'commander';
import { planOptions, withReadOnlyEngine, withPlanFlags, type GlobalOptions, type PlanFlags } from '../cli-context.js';
import { printable } from '../output.js';

export function registerValidate(program: Command): void {
  withPlanFlags(
    program
      .command('validate')
      .description('check a job file and list its tasks, without running anything (a cluster backend asks its scheduler to check too)')
      .argument('<file>', 'the job file'),
  ).action((file: string, options: GlobalOptions & PlanFlags) =>
    withReadOnlyEngine(options, async (engine) => {
      const planned = await engine.plan(file, planOptions(options));
      const names = planned.tasks.slice(0, 10).map((t) => printable(t.name));
      const more = planned.tasks.length > 10 ? `, … (${planned.tasks.length - 10} more)` : '';
      process.stdout.write(`${file}: ok, job ${planned.spec.name}, ${planned.tasks.length} task(s) from ${planned.spec.tasks.kind}: ${names.join(', ')}${more}\n`);
      // The plan found the engine and read each image's identity (pulling it if allowed): say what it found.
      const container = planned.spec.containerPlan;
      if (container) {
        const digests = Object.entries(container.digests);
        const images = digests.slice(0, 10).map(([image, digest]) => `${image} (${digest ?? 'identity unknown'})`);
        const moreImages = digests.length > 10 ? `, … (${digests.length - 10} more)` : '';
        process.stdout.write(`  in containers: ${container.engine}, pull ${container.pull}, image(s) present: ${images.join(', ')}${moreImages}\n`);
      }
    }),
  );
}
