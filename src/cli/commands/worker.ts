import { tmpdir } from 'node:os';
import type { Command } from 'commander';
import { localCapacity } from '../../backends/local/local-capacity.js';
import { UserError } from '../../errors.js';
import { GIB, parseDuration, parseMemory } from '../../job/units.js';
import { DEFAULT_LEASE_MS } from '../../engine/queue-duties.js';
import { Worker } from '../../worker/worker.js';
import { positiveInteger, withEngine, type GlobalOptions } from '../cli-context.js';

interface WorkerFlags extends GlobalOptions {
  cpus?: string;
  memory?: string;
  maxIdle?: string;
  lifetime?: string;
  lease?: string;
  scratch?: string;
  grace?: string;
  untilEmpty?: boolean;
  launchedBy?: string;
}

const EXIT_NOTE = {
  idle: 'nothing to claim for --max-idle',
  empty: 'the queue is empty',
  lifetime: 'its --lifetime is over; running tasks were handed back',
} as const;

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('claim and run tasks of `--backend workers` runs from the store, until stopped (SIGTERM: finish what runs; twice: hand it back)')
    .option('--cpus <n>', 'cpus this worker offers (default: all of this machine)')
    .option('--memory <size>', 'memory this worker offers (default: all of this machine)')
    .option('--max-idle <duration>', 'stop after this long with nothing to claim, e.g. 5m')
    .option('--lifetime <duration>', "hand running tasks back and stop after this long, e.g. 2h (below the allocation's walltime)")
    .option('--lease <duration>', 'visibility timeout: a worker silent this long loses its tasks to others (default 60s)')
    .option('--scratch <dir>', 'local folder for attempts whose workdir is in object storage (default: the system temp folder)')
    .option('--grace <duration>', 'between terminate and kill when a task is stopped (default 10s)')
    .option('--until-empty', 'stop as soon as there is nothing to claim')
    .option('--launched-by <what>', 'recorded with the worker (set by `fanout workers start`)')
    .action(async (options: WorkerFlags) => {
      const capacity = localCapacity();
      const cpus = options.cpus === undefined ? capacity.cpus : positiveInteger(options.cpus, '--cpus');
      const memory = options.memory === undefined ? capacity.memory : flag(parseMemory(options.memory), '--memory', 'a size such as 8GB');
      await withEngine(options, async (engine) => {
        const worker = new Worker({
          store: engine.store,
          storage: engine.storage,
          layout: engine.layout,
          scratch: options.scratch ?? tmpdir(),
          cpus,
          memory,
          leaseMs: duration(options.lease, '--lease') ?? DEFAULT_LEASE_MS,
          maxIdleMs: duration(options.maxIdle, '--max-idle'),
          lifetimeMs: duration(options.lifetime, '--lifetime'),
          untilEmpty: options.untilEmpty === true,
          launchedBy: options.launchedBy ?? null,
          graceMs: duration(options.grace, '--grace') ?? 10_000,
          log: (line) => process.stderr.write(`worker ${worker.id}: ${line}\n`),
          alerts: engine.alerts,
        });
        const onSignal = (signal: NodeJS.Signals) => {
          worker.stop();
          process.stderr.write(`worker ${worker.id}: ${signal}: ${worker.holding > 0 ? 'finishing what runs (again to hand it back)' : 'stopping'}\n`);
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
        process.stderr.write(`worker ${worker.id}: ${cpus} cpus, ${options.memory ?? `${Math.round(memory / GIB)}GiB`}, claiming from the store\n`);
        try {
          const exit = await worker.run();
          if (exit !== 'stopped') process.stderr.write(`worker ${worker.id}: ${EXIT_NOTE[exit]}\n`);
        } finally {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          process.stderr.write(`worker ${worker.id}: stopped\n`);
        }
      });
    });
}

function duration(text: string | undefined, name: string): number | null {
  if (text === undefined) return null;
  return flag(parseDuration(text), name, 'a duration such as 30s, 5m or 2h');
}

function flag<T>(value: T | null, name: string, example: string): T {
  if (value === null) throw new UserError(`${name} is not ${example}`);
  return value;
}
