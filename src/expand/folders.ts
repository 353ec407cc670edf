import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { JobFileError } from '../errors.js';
import type { TaskSeed } from '../job/job-spec.js';
import type { ExpandContext } from './expand-context.js';
import { symlinkLoop } from './symlink-loop.js';
import { checkTaskNames } from './task-names.js';

/** `folders: parent`: one task per child folder of `parent` (hidden ones skipped), in name order. */
export async function expandFolders(parent: string, ctx: ExpandContext): Promise<TaskSeed[]> {
  const where = ctx.locate('tasks.folders');
  let entries: Dirent[];
  try {
    entries = await readdir(parent, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new JobFileError(where, `the folder ${parent} does not exist`, 'check the path', {
        cause: error,
      });
    }
    if (code === 'ENOTDIR') {
      throw new JobFileError(where, `${parent} is a file, not a folder`, 'name the folder that holds one folder per task', { cause: error });
    }
    if (code === 'ELOOP') throw symlinkLoop(parent, where, error);
    throw error;
  }

  const names: string[] = [];
  for (const entry of entries) {
    if (!entry.name.startsWith('.') && (await isFolder(entry, parent, ctx))) names.push(entry.name);
  }
  if (names.length === 0) {
    throw new JobFileError(
      where,
      `the folder ${parent} has no child folders (hidden ones are skipped)`,
      'check the path; to run one task per file, use `files:` instead',
    );
  }
  // Plain code-unit order: the same on every machine, unlike a locale-aware compare.
  names.sort();

  const seeds = names.map((name, index) => {
    const folder = join(parent, name);
    return { index, name, vars: { folder }, inputs: [folder] };
  });
  // Folder names are unique, but one can still exceed the task-name length limit.
  checkTaskNames(
    seeds.map((seed) => ({ name: seed.name, origin: seed.vars.folder })),
    where,
    'rename the folder',
  );
  return seeds;
}

/** A child folder, or a symbolic link to one (links are a common way to gather inputs). */
async function isFolder(entry: Dirent, parent: string, ctx: ExpandContext): Promise<boolean> {
  if (entry.isDirectory()) return true;
  if (!entry.isSymbolicLink()) return false;
  const path = join(parent, entry.name);
  try {
    return (await stat(path)).isDirectory();
  } catch (error) {
    // A loop is a mistake; a dangling link is only not a folder.
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkLoop(path, ctx.locate('tasks.folders'), error);
    return false;
  }
}
