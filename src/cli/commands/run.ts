import type { Command } from 'commander';
import type { RunHandle, RunOutcome } from '../../engine/run-handle.js';
import { planOptions, positiveInteger, withEngine, withPlanFlags, type GlobalOptions, type MachineOptions, type PlanFlags } from '../cli-context.js';
import { statusJson } from '../../run-json.js';
import { countsLine } from '../output.js';
import { ProgressView } from '../progress-view.js';
import { startUiServer } from '../../ui/ui-server.js';
import { announcement, DEFAULT_UI_PORT, parsePort } from './ui.js';

interface RunOptions extends GlobalOptions, MachineOptions, PlanFlags {
  concurrency?: string;
  fresh?: boolean;
  json?: boolean;
  detach?: boolean;
  ui?: boolean;
  uiHost: string;
  uiPort: string;
}

export function registerRun(program: Command, setExitCode: (code: number) => void): void {
  withPlanFlags(
    program
      .command('run')
      .description('run every task of a job file, here or on a cluster (resumes an interrupted run)')
      .argument('<file>', 'the job file (YAML or JSON)'),
  )
    .option('--concurrency <n>', 'the most tasks running at once')
    .option('--fresh', 'ignore the cache: run every task again')
    .option('--json', 'print the final status as JSON')
    .option('--detach', 'with --backend workers: queue the tasks and return at once (the run goes on)')
    .option('--cpus <n>', 'cpus fanout may use (default: all)')
    .option('--memory <size>', 'memory fanout may use (default: all)')
    .option('--grace <duration>', 'between terminate and kill when stopping a task (default 10s)')
    .option('--ui', 'serve the dashboard while the run goes (as `fanout ui`; it stops when the run ends)')
    .option('--ui-host <address>', 'with --ui: address to listen on (anything but loopback needs the token)', '127.0.0.1')
    .option('--ui-port <n>', `with --ui: port to listen on (0 for any free one)`, String(DEFAULT_UI_PORT))
    .action(async (file: string, options: RunOptions) => {
      const uiPort = options.ui ? parsePort(options.uiPort, '--ui-port') : 0;
      const code = await withEngine(options, async (engine) => {
        const handle = await engine.start(file, {
          ...planOptions(options),
          fresh: options.fresh,
          concurrency: options.concurrency === undefined ? undefined : positiveInteger(options.concurrency, '--concurrency'),
        });
        if (options.detach && handle.interrupt === 'detaches') handle.stop();
        if (!options.ui) return follow(handle, options.json === true);
        const server = await startUiServer({ engine, host: options.uiHost, port: uiPort, token: process.env.FANOUT_UI_TOKEN || undefined, driving: handle }).catch(
          async (error: unknown) => {
            // No dashboard (its port is taken): stop the run just started rather than leave it unwatched.
            handle.stop();
            await handle.done;
            throw error;
          },
        );
        process.stderr.write(`${announcement(server.url, options.uiHost)}\n`);
        try {
          return await follow(handle, options.json === true);
        } finally {
          await server.close();
        }
      });
      setExitCode(code);
    });
}

/** Show progress until the run ends; Ctrl-C once stops it cleanly, twice forces. */
export async function follow(handle: RunHandle, json: boolean): Promise<number> {
  const view = new ProgressView(json ? 'quiet' : process.stderr.isTTY ? 'tty' : 'lines');
  if (!json) view.note(`run ${handle.run.id} (${handle.run.job}): ${handle.progress().total} tasks, outputs in ${handle.run.spec.outdir}`);
  handle.onProgress((progress) => view.update(progress));
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts++;
    if (!json && handle.interrupt === 'detaches')
      view.note(`${signal}: no longer watching; the run goes on (\`fanout status ${handle.run.id}\`, \`fanout cancel ${handle.run.id}\`)`);
    else if (!json) view.note(interrupts === 1 ? `${signal}: stopping; running tasks are terminated (Ctrl-C again to kill them)` : `${signal}: killing running tasks`);
    handle.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcome: RunOutcome;
  try {
    outcome = await handle.done;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  view.finish(handle.progress());
  if (json) process.stdout.write(`${JSON.stringify(statusJson(outcome.run, outcome.counts))}\n`);
  else if (outcome.run.state === 'running') {
    process.stderr.write(`run ${outcome.run.id} goes on with the workers: ${countsLine(outcome.counts)}; follow it with \`fanout status ${outcome.run.id}\`\n`);
  } else {
    const gather = outcome.gather === null ? '' : `; gather ${outcome.gather}`;
    process.stderr.write(`run ${outcome.run.id} ${outcome.run.state}: ${countsLine(outcome.counts)}${gather}\n`);
    if (outcome.counts.failed > 0) process.stderr.write(`see \`fanout tasks ${outcome.run.id} --state failed\` and \`fanout logs ${outcome.run.id} TASK\`\n`);
  }
  if (outcome.run.state === 'succeeded') return 0;
  if (outcome.run.state === 'running') return interrupts > 0 ? 130 : 0;
  return outcome.run.state === 'cancelled' && interrupts > 0 ? 130 : 1;
}
