import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Engine, type PlanOptions } from '../engine/engine.js';
import { backendNames, type BackendName } from '../job/job-schema.js';
import { UserError } from '../errors.js';
import { parseDuration, parseMemory } from '../job/units.js';

/** Options every command shares. */
export interface GlobalOptions {
  home?: string;
  /** Where state lives: a postgres:// URL, or (default) SQLite in the home. */
  store?: string;
}

/** Options that say how much of the machine to use and how to stop attempts. */
export interface MachineOptions {
  cpus?: string;
  memory?: string;
  grace?: string;
}

export function homeFolder(options: GlobalOptions): string {
  return resolve(options.home ?? process.env.FANOUT_HOME ?? '.fanout');
}

export function storeLocation(options: GlobalOptions): string | undefined {
  return options.store ?? (process.env.FANOUT_STORE || undefined);
}

/** `readOnly`: the command only reads or checks, and creates no home where none exists. */
export function openEngine(options: GlobalOptions & MachineOptions, mode: { readOnly?: boolean } = {}): Promise<Engine> {
  const cpus = options.cpus ?? process.env.FANOUT_CPUS;
  const memory = options.memory ?? process.env.FANOUT_MEMORY;
  const grace = options.grace ?? process.env.FANOUT_GRACE;
  // How long a command about to exit waits for alerts still being delivered.
  const alertWait = process.env.FANOUT_ALERT_WAIT;
  return Engine.open({
    home: homeFolder(options),
    store: storeLocation(options),
    limits: {
      cpus: cpus === undefined ? undefined : positiveInteger(cpus, '--cpus'),
      memory: memory === undefined ? undefined : parsed(parseMemory(memory), '--memory', 'a size such as 8GB'),
    },
    graceMs: grace === undefined ? undefined : parsed(parseDuration(grace), '--grace', 'a duration such as 10s'),
    alertWaitMs: alertWait === undefined ? undefined : parsed(parseDuration(alertWait), 'FANOUT_ALERT_WAIT', 'a duration such as 30s'),
    readOnly: mode.readOnly,
  });
}

export function positiveInteger(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new UserError(`${flag} must be a whole number of at least 1, not "${text}"`);
  return value;
}

function parsed<T>(value: T | null, flag: string, example: string): T {
  if (value === null) throw new UserError(`${flag} is not ${example}`);
  return value;
}

/** Flags that change how a job file is read: `--set`, `--backend`, `--workdir`. */
export interface PlanFlags {
  set: string[];
  backend?: string;
  workdir?: string;
}

export function withPlanFlags(command: Command): Command {
  return command
    .option('--set <key=value>', 'override a value of `vars` (repeatable)', collect, [])
    .option('--backend <name>', `where tasks run: ${backendNames.join(', ')} (default: the job file's backend, else local; or FANOUT_BACKEND)`)
    .option('--workdir <dir>', "where attempt folders live; on a cluster, on the nodes' shared filesystem");
}

export function planOptions(flags: PlanFlags): PlanOptions {
  const backend = flags.backend ?? process.env.FANOUT_BACKEND;
  if (backend !== undefined && !(backendNames as readonly string[]).includes(backend)) {
    throw new UserError(`--backend ${backend} is not a backend`, `use one of: ${backendNames.join(', ')}`);
  }
  return { set: parseSets(flags.set), backend: backend as BackendName | undefined, workdir: flags.workdir };
}

/** `--set key=value` pairs. */
function parseSets(pairs: string[]): Record<string, string> {
  const set: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UserError(`--set ${pair}: expected key=value`);
    set[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return set;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * Run a command body with an engine that is closed afterwards. A command refused before it
 * recorded anything (a bad job file, a wrong `--set`) leaves no home where there was none.
 */
export async function withEngine<T>(options: GlobalOptions & MachineOptions, body: (engine: Engine) => Promise<T> | T, mode: { readOnly?: boolean } = {}): Promise<T> {
  const home = homeFolder(options);
  const homeIsNew = !mode.readOnly && storeLocation(options) === undefined && !existsSync(home);
  const engine = await openEngine(options, mode);
  let refusedEmpty = false;
  try {
    return await body(engine);
  } catch (error) {
    refusedEmpty = homeIsNew && error instanceof UserError && (await engine.store.listRuns({ limit: 1 })).length === 0;
    throw error;
  } finally {
    await engine.close();
    if (refusedEmpty) rmSync(home, { recursive: true, force: true });
  }
}

/** `withEngine` for commands that only read or check: a home that does not exist is left uncreated. */
export function withReadOnlyEngine<T>(options: GlobalOptions, body: (engine: Engine) => Promise<T> | T): Promise<T> {
  return withEngine(options, body, { readOnly: true });
}
