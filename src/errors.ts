/**
 * The few error classes fanout has. Each one changes what the CLI does:
 * a UserError prints one line and exits 2; anything else is a bug and prints its stack.
 */

/** Where in a job file (or a file it names) something went wrong. */
export interface SourceLocation {
  /** The file, as the user named it. */
  file: string;
  /** 1-based line, when known. */
  line?: number;
  /** Dotted path of the job-file field, e.g. `tasks.chunks.count`. */
  field?: string;
}

/** A mistake the user can fix: bad job file, bad flag, missing input. */
export class UserError extends Error {
  override name = 'UserError';
  constructor(
    message: string,
    readonly fix?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The one line the CLI prints. */
  describe(): string {
    return this.fix ? `${this.message}; ${this.fix}` : this.message;
  }
}

/**
 * A job file that cannot run. The message reads
 * `job.yaml:12: tasks.files: the glob "data/*.fq" matches no files; check the path`.
 */
export class JobFileError extends UserError {
  override name = 'JobFileError';
  constructor(
    readonly location: SourceLocation,
    problem: string,
    fix?: string,
    options?: { cause?: unknown },
  ) {
    super(`${formatLocation(location)}${problem}`, fix, options);
  }
}

function formatLocation(location: SourceLocation): string {
  const where = location.line ? `${location.file}:${location.line}` : location.file;
  return location.field ? `${where}: ${location.field}: ` : `${where}: `;
}

/** What was wrong with a call of the TypeScript API, for code that wants to tell cases apart. */
export type ApiErrorCode =
  /** An option that `Fanout.open` or `map` does not know, or a value it cannot take. */
  | 'bad-option'
  /** An item (or a value in it) that does not survive JSON: a function, a BigInt, undefined, a cycle... */
  | 'item-not-json'
  /** An item too big to travel in a task's environment. */
  | 'item-too-big'
  /** The module of a function map cannot be found or imported. */
  | 'module-not-importable'
  /** The module does not export a function under that name. */
  | 'export-not-function'
  /** No run with that id in this store. */
  | 'no-such-run'
  /** The handle or the `Fanout` is used after it was closed, or closed while a run goes on. */
  | 'closed';

/**
 * A mistake in a call of the TypeScript API (not in a job): its `code` says which, `index` names
 * the item when one item is at fault. Code that calls the API often prints only `message`, so
 * the message ends with the fix (which `fix` also holds).
 */
export class FanoutApiError extends UserError {
  override name = 'FanoutApiError';
  /** The item at fault, for `item-not-json` and `item-too-big`. */
  readonly index: number | undefined;

  constructor(
    readonly code: ApiErrorCode,
    problem: string,
    fix?: string,
    options?: { cause?: unknown; index?: number },
  ) {
    super(fix ? `${problem}; ${fix}` : problem, fix, options);
    this.index = options?.index;
  }

  /** The message, which already ends with the fix. */
  override describe(): string {
    return this.message;
  }
}
