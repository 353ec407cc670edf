import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { Engine } from '../engine/engine.js';
import { FanoutApiError } from '../errors.js';
import type { JobDefinition } from '../job/job-schema.js';
import type { Scalar } from '../job/job-spec.js';
import { FanoutRun } from './fanout-run.js';
import { functionMapJob } from './function-map.js';
import { compileOpenOptions, refuseUnknownKeys, withDefaults, type FanoutOptions, type JobDefaults } from './open-options.js';

/** How a run is started, besides its job. */
export interface RunOptions {
  /** Relative paths in the job resolve against this folder, and the default outdir (`fanout-out/<name>`) goes under it. Default: the current folder. */
  baseDir?: string;
  /** Ignore the cache: run every task again, even those done before with the same command and item. */
  fresh?: boolean;
}

/**
 * Options of `map`: any job-file field but those `map` makes from its arguments (`command`,
 * `script`, `tasks`), e.g. `resources`, `retry`, `concurrency`, `outdir`, `workdir`, `gather`,
 * `vars`, `name`; plus the run options.
 */
export type MapOptions = Omit<JobDefinition, 'command' | 'script' | 'tasks'> & RunOptions;

/** An item of a command map: a value (`{{ item }}`), or a map of values (one variable per key). */
export type CommandItem = Scalar | Record<string, Scalar>;

const RUN_OPTION_KEYS = ['baseDir', 'fresh'] as const;

/**
 * fanout from TypeScript: submit jobs, map commands or functions over items, follow progress and
 * gather results, with the same engine, store and backends as the `fanout` command.
 *
 * ```ts
 * const fo = await Fanout.open();
 * const run = await fo.map(new URL('./work.js', import.meta.url), 'measure', samples, { resources: { memory: '2GB', time: '10m' } });
 * for await (const event of run.progress()) console.log(event.counts);
 * const results = await run.gather();
 * await fo.close();
 * ```
 */
export class Fanout {
  private readonly runs = new Map<number, FanoutRun>();
  private closed = false;

  private constructor(
    private readonly engine: Engine,
    private readonly defaults: JobDefaults,
    /** Where runs' outputs and logs are read from when they are gathered. */
  ) {}

  /**
   * Open fanout's state: SQLite in `home` (default `.fanout` in the current folder, or
   * `FANOUT_HOME`), or PostgreSQL at `store`. The backend options (`backend`, `concurrency`,
   * `cluster`, `slurm`, `sge`, `container`, `profile`, `workdir`) are defaults for every run; a job's own fields win.
   * An unknown option, or settings the chosen backend does not use, is a FanoutApiError.
   */
  static async open(options: FanoutOptions = {}): Promise<Fanout> {
    const { engine, defaults } = compileOpenOptions(options);
    return new Fanout(await Engine.open(engine), defaults);
  }

  /**
   * Start a run of a job given as an object: the fields of a job file, checked by the same schema
   * with the same messages (a JobFileError such as `<submit>: tasks.each[2]: ...`). It needs a
   * `name`. A run of the same job with the same plan that was cut off resumes in place, and tasks
   * done before with the same command and variables are skipped, as for `fanout run`.
   */
  async submit(job: JobDefinition, options: RunOptions = {}): Promise<FanoutRun> {
    this.checkOpen();
    refuseUnknownKeys(options as Record<string, unknown>, RUN_OPTION_KEYS, 'submit options');
    return this.start(job, '<submit>', options);
  }

  /**
   * One task per item running a shell command template: `{{ item }}` is the item (shell-quoted),
   * or for items that are maps, each key is a variable. `{{ out }}` is the task's output folder.
   */
  map(commandTemplate: string, items: readonly CommandItem[], options?: MapOptions): Promise<FanoutRun>;
  /**
   * One task per item calling `await module[exportName](item)` in a worker process (`node`, on
   * whatever backend runs the tasks: the module's path must be reachable there). Items travel as
   * JSON and the return value comes back as JSON (`run.gather()` gives it as `value`, and it is
   * `return.json` in the task's outputs); a thrown error fails the task, with its message and
   * stack in `run.gather()`. A function that never settles is stopped by `resources.time`.
   * Checked first, in this process: the module imports and exports that function, and every item
   * is JSON (else a FanoutApiError naming the item's index).
   */
  map(module: string | URL, exportName: string, items: readonly unknown[], options?: MapOptions): Promise<FanoutRun>;
  async map(first: string | URL, second: unknown, third?: unknown, fourth?: unknown): Promise<FanoutRun> {
    this.checkOpen();
    const functionMap = typeof second === 'string';
    const items = functionMap ? third : second;
    const options = ((functionMap ? fourth : third) ?? {}) as MapOptions;
    if (!Array.isArray(items)) {
      throw new FanoutApiError(
        'bad-option',
        `map: the items must be an array, not ${items === null ? 'null' : typeof items}`,
        functionMap ? 'call map(module, exportName, items, options)' : 'call map(commandTemplate, items, options)',
      );
    }
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new FanoutApiError('bad-option', 'map: the options must be an object', 'e.g. { resources: { time: "10m" } }');
    }
    for (const made of ['command', 'script', 'tasks']) {
      if (made in options) throw new FanoutApiError('bad-option', `map: the option "${made}" is made by map itself`, 'use submit() to give a whole job');
    }
    const { baseDir, fresh, ...fields } = options;
    const runOptions = { baseDir, fresh };
    if (!functionMap) {
      if (typeof first !== 'string') throw new FanoutApiError('bad-option', 'map: the command template must be a string', 'e.g. map("gzip -k {{ item }}", files)');
      const name = `map-${createHash('sha256').update(first).digest('hex').slice(0, 8)}`;
      return this.start({ name, ...fields, command: first, tasks: { each: items } }, '<map>', runOptions);
    }
    const made = await functionMapJob(first, second, items, resolve(baseDir ?? process.cwd()));
    const job = { ...fields, name: fields.name ?? made.name, command: made.command, tasks: made.tasks, vars: { ...fields.vars, ...made.vars } };
    return this.start(job, '<map>', runOptions);
  }

  /**
   * Re-open a run started earlier, by id, in this process or another (after a restart): follow
   * it and gather its results without running anything again. A run still going whose driving
   * process is gone is taken over and driven here.
   */
  async run(id: number): Promise<FanoutRun> {
    this.checkOpen();
    const known = this.runs.get(id);
    if (known) return known;
    const record = Number.isSafeInteger(id) ? await this.engine.store.getRun(id) : null;
    if (!record)
      throw new FanoutApiError('no-such-run', `there is no run ${id} in this store`, 'pass the id of a run started with this home or store (`fanout runs` lists them)');
    const run = FanoutRun.of(this.engine, record, null);
    this.runs.set(id, run);
    return run;
  }

  /**
   * Close the store. Runs this process drives must have ended first (await `run.wait()` or
   * `run.cancel()`); watches of runs on the workers backend stop, and those runs go on.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    const going = [...this.runs.values()].find((run) => run.isDrivenHere);
    if (going) throw new FanoutApiError('closed', `run ${going.id} (${going.job}) is still going in this process`, 'await run.wait() or run.cancel() before fo.close()');
    for (const run of this.runs.values()) run.detach();
    this.closed = true;
    await this.engine.close();
  }

  private async start(job: JobDefinition, label: string, options: RunOptions): Promise<FanoutRun> {
    const going = [...this.runs.values()].find((run) => run.isDrivenHere && run.job === job.name);
    if (going) {
      // The engine would refuse it too, but as if another fanout held the job.
      throw new FanoutApiError(
        'bad-option',
        `job ${job.name} already has a run going in this process (run ${going.id})`,
        'give this one another `name`, or await the first run',
      );
    }
    const source = { job: withDefaults(job, this.defaults), label, baseDir: resolve(options.baseDir ?? process.cwd()) };
    const handle = await this.engine.start(source, { fresh: options.fresh });
    const run = FanoutRun.of(this.engine, handle.run, handle);
    this.runs.set(run.id, run);
    return run;
  }

  private checkOpen(): void {
    if (this.closed) throw new FanoutApiError('closed', 'this Fanout is closed', 'open another with Fanout.open()');
  }
}
