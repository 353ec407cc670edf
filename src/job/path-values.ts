import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

/**
 * A value the user wrote as a relative path (`db: db.dmnd`) means a path relative to where it
 * was written: the job file's folder for `vars:`, the current folder for `--set`. Tasks run in a
 * folder of their own, so such a value is made absolute here, once, when it names a file or
 * folder that exists. Anything else (a word, a number, an absolute path, an `s3://` URI, an
 * output name that does not exist yet) is left as written; `{{ jobdir }}` covers the rest.
 */
export function resolvePathValue(value: string, base: string): string {
  if (value === '' || value.includes('\n') || isAbsolute(value) || /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value)) return value;
  const path = resolve(base, value);
  return existsSync(path) ? path : value;
}
