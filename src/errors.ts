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

export function formatLocation(location: SourceLocation): string {
  const where = location.line ? `${location.file}:${location.line}` : location.file;
  return location.field ? `${where}: ${location.field}: ` : `${where}: `;
}
