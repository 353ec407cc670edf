import type { SourceLocation } from '../errors.js';

/** Maps a dotted job-file field (`tasks.chunks.count`) to its file and line. */
export type Locate = (field: string) => SourceLocation;

/** `tasks.each[2].sample` → ['tasks', 'each', 2, 'sample']. */
export function fieldPath(field: string): Array<string | number> {
  const path: Array<string | number> = [];
  for (const match of field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (match[2] !== undefined) path.push(Number(match[2]));
    else path.push(match[1]!);
  }
  return path;
}

/** ['tasks', 'each', 2, 'sample'] → `tasks.each[2].sample`. */
export function fieldName(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}
