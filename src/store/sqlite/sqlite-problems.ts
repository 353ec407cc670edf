import { UserError } from '../../errors.js';
import { fullDiskFix, readOnlyFix, systemProblem } from '../../system-problems.js';

/** What to do with a store file SQLite cannot use as a database. */
const damagedFix = (path: string) => `restore ${path} from a backup, or move the home aside (e.g. \`mv ${dirOf(path)} ${dirOf(path)}.broken\`) to start a new one`;

/**
 * An error from the SQLite store told as the one line a user can act on, naming the file:
 * a full disk, a read-only or forbidden home, a file that is not (or no longer) a database.
 * Anything else (a bug) is returned as it was.
 */
export function sqliteProblem(error: unknown, path: string): unknown {
  if (error instanceof UserError) return error;
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== 'string') return error;
  const detail = (error as Error).message;
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE' || code === 'SQLITE_IOERR_SHMSIZE') {
    return new UserError(`the store ${path} cannot be written: the disk is full (${detail})`, fullDiskFix, { cause: error });
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM') {
    return new UserError(`the store ${path} cannot be opened for writing (${detail})`, readOnlyFix, { cause: error });
  }
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new UserError(`the store ${path} is damaged: ${detail}`, damagedFix(path), { cause: error });
  }
  return systemProblem(error) ?? error;
}

function dirOf(path: string): string {
  return path.replace(/\/[^/]*$/, '') || '/';
}

/**
 * `part` (the ledger, the queue, the queries) with every error of its methods told as
 * `sqliteProblem` does: a disk that fills during a run ends it with one line, not a stack trace.
 */
export function withSqliteProblems<T extends object>(part: T, path: string): T {
  return new Proxy(part, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        try {
          const result: unknown = value.apply(target, args);
          return result instanceof Promise
            ? result.catch((error: unknown) => {
                throw sqliteProblem(error, path);
              })
            : result;
        } catch (error) {
          throw sqliteProblem(error, path);
        }
      };
    },
  });
}
