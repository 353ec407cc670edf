import { join } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { formatBytes, parseDuration, parseMemory } from '../../job/units.js';
import { launchWorkers } from '../../backends/workers/launch-workers.js';
import { homeFolder, positiveInteger, storeLocation, withEngine, type GlobalOptions } from '../cli-context.js';
import { table } from '../output.js';

interface StartFlags extends GlobalOptions {
  backend?: string;
  count?: string;
  cpus?: string;
  memory?: string;
  time?: string;
  lease?: string;
  profile?: string;
}

export function registerWorkers(program: Command): void {
  const workers = program
    .command('workers')
    .description('list the pull workers of the store with their last heartbeat (`workers start` launches more)')
    .option('--all', 'include workers that stopped')
    .option('--json', 'print as JSON')
    .action((options: GlobalOptions & { all?: boolean; json?: boolean }) =>
      withEngine(options, async (engine) => {
        const list = await engine.store.listWorkers({ all: options.all === true });
        if (options.json) {
          process.stdout.write(`${JSON.stringify(list)}\n`);
          return;
        }
        const now = Date.now();
        const rows = list.map((w) => [
          w.id,
          w.state,
          String(w.cpus),
          formatBytes(w.memory),
          String(w.holding),
          `${Math.round((now - w.heartbeatAt) / 1000)}s ago`,
          w.launchedBy ?? 'by hand',
        ]);
        process.stdout.write(`${table(['WORKER', 'STATE', 'CPUS', 'MEMORY', 'HOLDING', 'HEARTBEAT', 'LAUNCHED'], rows)}\n`);
      }),
    );
  workers
    .command('start')
    .description('launch N pull workers here or as a cluster array job; they stop when the queue is empty')
    .requiredOption('--count <n>', 'how many workers')
    .option('--backend <name>', 'where they run: local, slurm or sge (default local)')
    .option('--cpus <n>', 'cpus per worker (default 1)')
    .option('--memory <size>', 'memory per worker (default: the cluster default; here, the whole machine)')
    .option('--time <duration>', "each worker job's walltime on a cluster; workers hand their tasks back before it ends")
    .option('--lease <duration>', "the workers' visibility timeout (default 60s)")
    .option('--profile <name>', 'cluster settings (partition, account, queue) from a profile of the fanout config file')
    .option('--home <dir>', 'where fanout keeps its state')
    .option('--store <url>', 'a postgres:// store instead of SQLite (or FANOUT_STORE)')
    .action(async (options: StartFlags) => {
      const backend = options.backend ?? 'local';
      if (backend !== 'local' && backend !== 'slurm' && backend !== 'sge') {
        throw new UserError(`--backend ${backend} cannot start workers`, 'use local, slurm or sge');
      }
      const memory = options.memory === undefined ? null : parseMemory(options.memory);
      if (memory === null && options.memory !== undefined) throw new UserError(`--memory ${options.memory} is not a size such as 4GB`);
      const time = options.time === undefined ? null : parseDuration(options.time);
      if (time === null && options.time !== undefined) throw new UserError(`--time ${options.time} is not a duration such as 2h`);
      const home = homeFolder(options);
      const store = storeLocation(options);
      const workerArgs = ['--home', home];
      if (options.lease !== undefined) workerArgs.push('--lease', options.lease);
      // The store URL travels in the environment (FANOUT_STORE), so its password is in no file or process list.
      if (store !== undefined) process.env.FANOUT_STORE = store;
      const message = await launchWorkers({
        backend,
        count: positiveInteger(options.count!, '--count'),
        cpus: options.cpus === undefined ? 1 : positiveInteger(options.cpus, '--cpus'),
        memory: memory,
        timeMs: time,
        folder: join(home, 'workers', new Date().toISOString().replace(/[:.]/g, '-')),
        workerArgs,
        profile: options.profile ?? null,
      });
      process.stderr.write(`${message}\n`);
    });
}
