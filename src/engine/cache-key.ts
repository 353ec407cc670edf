import { createHash, type Hash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { JobFileError, type SourceLocation } from '../errors.js';
import { symlinkLoop } from '../expand/symlink-loop.js';

/**
 * A task's cache key: its rendered command (with its `setup:` lines), its `env:`, its variables
 * and the identity (path, size, modification time) of the files it reads. Resources are left out
 * on purpose: a task that succeeded with more memory is still done. `where` is the task source,
 * named when an input cannot be looked at.
 */
export function cacheKey(
  renderedCommand: string,
  env: Readonly<Record<string, string>>,
  vars: Readonly<Record<string, string>>,
  inputs: readonly string[],
  where: SourceLocation,
): string {
  const hash = createHash('sha256');
  hash.update(renderedCommand);
  hash.update('\0');
  hashEnv(hash, env);
  for (const key of Object.keys(vars).sort()) hash.update(`${key}=${vars[key]}\0`);
  for (const input of inputs) hash.update(`${inputIdentity(input, where)}\0`);
  return hash.digest('hex').slice(0, 32);
}

/**
 * A job's `env:` into a key. Nothing at all when it has none, so the keys of jobs without one
 * stay what they were before `env:` existed and their done tasks are not rerun.
 */
export function hashEnv(hash: Hash, env: Readonly<Record<string, string>>): void {
  const names = Object.keys(env).sort();
  if (names.length === 0) return;
  hash.update('env\0');
  for (const name of names) hash.update(`${name}=${env[name]}\0`);
}

/** A file's path, size and mtime; a folder's is that of everything under it. */
function inputIdentity(path: string, where: SourceLocation): string {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return `${path}:missing`;
  }
  if (!stat.isDirectory()) return `${path}:${stat.size}:${stat.mtimeMs}`;
  const parts: string[] = [];
  const walk = (folder: string, prefix: string) => {
    for (const entry of lookAt(folder, where, () => readdirSync(folder, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = join(folder, entry.name);
      if (entry.isDirectory()) walk(full, `${prefix}${entry.name}/`);
      else {
        const s = lookAt(full, where, () => statSync(full, { throwIfNoEntry: false }));
        parts.push(`${prefix}${entry.name}:${s?.size}:${s?.mtimeMs}`);
      }
    }
  };
  walk(path, '');
  return `${path}:{${parts.join(',')}}`;
}

/** `look` at an input, turning what stops it (a link loop, no permission) into the job's error. */
function lookAt<T>(path: string, where: SourceLocation, look: () => T): T {
  try {
    return look();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw symlinkLoop(path, where, error);
    throw new JobFileError(where, `the input ${path} cannot be read (${code ?? String(error)})`, 'make it readable by the user who runs fanout', { cause: error });
  }
}
