import { UserError } from './errors.js';

/**
 * A failure of the machine rather than of fanout — a full disk, a read-only or forbidden path —
 * told as the one line a user can act on, naming the path. Anything else is left alone (undefined).
 */
export function systemProblem(error: unknown): UserError | undefined {
  const { code, path } = (error ?? {}) as NodeJS.ErrnoException;
  const where = path === undefined ? 'a file fanout writes' : path;
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new UserError(`the disk holding ${where} is full (${code})`, fullDiskFix, { cause: error });
    case 'EROFS':
      return new UserError(`${where} is on a read-only filesystem`, readOnlyFix, { cause: error });
    case 'EACCES':
    case 'EPERM':
      return new UserError(`permission denied on ${where} (${code})`, readOnlyFix, { cause: error });
    default:
      return undefined;
  }
}

/** A run cut off by a full disk is left as it was, so the same command resumes it. */
export const fullDiskFix = 'free space there, then run the same command again: a run that was cut off resumes where it stopped';

export const readOnlyFix = 'give a writable folder with --home (or FANOUT_HOME), or make this one writable by the user who runs fanout';
