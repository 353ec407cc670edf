import { Command, CommanderError } from 'commander';
import { UserError } from '../errors.js';
import { systemProblem } from '../system-problems.js';
import { registerBackends } from './commands/backends.js';
import { registerCancel } from './commands/cancel.js';
import { registerGather } from './commands/gather.js';
import { registerLogs } from './commands/logs.js';
import { registerRender } from './commands/render.js';
import { registerRetry } from './commands/retry.js';
import { registerRun } from './commands/run.js';
import { registerRuns } from './commands/runs.js';
import { registerSchema } from './commands/schema.js';
import { registerStatus } from './commands/status.js';
import { registerTasks } from './commands/tasks.js';
import { registerUi } from './commands/ui.js';
import { registerValidate } from './commands/validate.js';
import { registerWorker } from './commands/worker.js';
import { registerWorkers } from './commands/workers.js';

/** Exit codes: 0 all succeeded, 1 a task failed for good, 2 usage or job-file error, 130 interrupted. */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const setExitCode = (code: number) => {
    exitCode = code;
  };
  const program = new Command('fanout')
    .description('Run thousands of independent command-line tasks from one job file.')
    .option('--home <dir>', 'where fanout keeps its state (default: .fanout, or FANOUT_HOME)')
    .option('--store <url>', 'keep state in PostgreSQL (postgres://user:pass@host/db) instead of SQLite in the home (or FANOUT_STORE)')
    .enablePositionalOptions(false)
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  registerRun(program, setExitCode);
  registerStatus(program);
  registerTasks(program);
  registerLogs(program);
  registerRetry(program, setExitCode);
  registerCancel(program);
  registerGather(program, setExitCode);
  registerRuns(program);
  registerRender(program);
  registerValidate(program);
  registerSchema(program);
  registerBackends(program);
  registerWorker(program);
  registerWorkers(program);
  registerUi(program);
  program.hook('preAction', (_program, action) => {
    for (const name of ['home', 'store']) {
      const value = program.opts()[name] as string | undefined;
      if (value !== undefined && action.opts()[name] === undefined) action.setOptionValue(name, value);
    }
  });
  for (const command of program.commands) {
    command.exitOverride();
    // --home and --store are accepted before or after the command name.
    if (!command.options.some((o) => o.long === '--home')) command.option('--home <dir>', 'where fanout keeps its state');
    if (!command.options.some((o) => o.long === '--store')) command.option('--store <url>', 'a postgres:// store instead of SQLite (or FANOUT_STORE)');
  }

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : 2;
    }
    // A full disk or a read-only path is the machine's state, not a bug: one line, like a user mistake.
    const userError = error instanceof UserError ? error : systemProblem(error);
    if (userError) {
      process.stderr.write(`fanout: ${userError.describe()}\n`);
      return 2;
    }
    process.stderr.write(`fanout: internal error (a bug in fanout; please report it with this output)\n${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}
