import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { TASK_STATES, type TaskState } from '../../store/records.js';
import { withReadOnlyEngine, type GlobalOptions } from '../cli-context.js';
import { taskJson } from '../../run-json.js';
import { bytesOrDash, durationOrDash, orDash, table } from '../output.js';

export function registerTasks(program: Command): void {
  program
    .command('tasks')
    .description('one row per task: state, attempts, last reason, exit code, memory, duration')
    .argument('[run]', 'run id or job name (default: the latest run)')
    .option('--state <state>', `only tasks in this state (${TASK_STATES.join(', ')})`)
    .option('--json', 'print as JSON')
    .action((ref: string | undefined, options: GlobalOptions & { state?: string; json?: boolean }) =>
      withReadOnlyEngine(options, async (engine) => {
        const state = options.state;
        if (state !== undefined && !TASK_STATES.includes(state as TaskState)) {
          throw new UserError(`--state ${state} is not a task state`, `use one of ${TASK_STATES.join(', ')}`);
        }
        const run = await engine.resolveRun(ref);
        const tasks = await engine.store.listTasks(run.id, { state: state as TaskState | undefined });
        if (options.json) {
          process.stdout.write(`${JSON.stringify(tasks.map((task) => taskJson(task, run.spec)))}\n`);
          return;
        }
        const rows = tasks.map((t) => [
          t.name,
          t.state,
          String(t.attempts),
          orDash(t.reason),
          orDash(t.exitCode),
          bytesOrDash(t.memory),
          bytesOrDash(t.peakMemory),
          durationOrDash(t.durationMs),
        ]);
        process.stdout.write(`${table(['NAME', 'STATE', 'ATTEMPTS', 'REASON', 'EXIT', 'MEMORY', 'PEAK', 'DURATION'], rows)}\n`);
      }),
    );
}
