import type { SourceLocation } from '../errors.js';

/** What a task source needs besides its own settings. */
export interface ExpandContext {
  /** The job-file location of a field (e.g. `tasks.table`), for error messages. */
  locate(field: string): SourceLocation;
  /**
   * A folder under the fanout home where chunk files may be written. A task source keeps what it
   * writes there stable across runs so that cache keys stay valid on resume.
   */
  chunkDir: string;
}
