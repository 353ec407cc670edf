import { JobFileError, type SourceLocation } from '../errors.js';

/** A symbolic link that leads back to itself, found under a task source's inputs. */
export function symlinkLoop(path: string, where: SourceLocation, cause: unknown): JobFileError {
  return new JobFileError(where, `${path} is a symbolic link loop (it leads back to itself)`, 'remove the link or point it at a real file or folder', {
    cause,
  });
}
