import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A task's cache key: its rendered command, its variables and the identity (path, size,
 * modification time) of the files it reads. Resources are left out on purpose: a task that
 * succeeded with more memory is still done.
 */
export function cacheKey(renderedCommand: string, vars: Readonly<Record<string, string>>, inputs: readonly string[]): string {
  const hash = createHash('sha256');
  hash.update(renderedCommand);
  hash.update('\0');
  for (const key of Object.keys(vars).sort()) hash.update(`${key}=${vars[key]}\0`);
  for (const input of inputs) hash.update(`${inputIdentity(input)}\0`);
  return hash.digest('hex').slice(0, 32);
}

/** A file's path, size and mtime; a folder's is that of everything under it. */
function inputIdentity(path: string): string {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return `${path}:missing`;
  }
  if (!stat.isDirectory()) return `${path}:${stat.size}:${stat.mtimeMs}`;
  const parts: string[] = [];
  const walk = (folder: string, prefix: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = join(folder, entry.name);
      if (entry.isDirectory()) walk(full, `${prefix}${entry.name}/`);
      else {
        const s = statSync(full, { throwIfNoEntry: false });
        parts.push(`${prefix}${entry.name}:${s?.size}:${s?.mtimeMs}`);
      }
    }
  };
  walk(path, '');
  return `${path}:{${parts.join(',')}}`;
}
