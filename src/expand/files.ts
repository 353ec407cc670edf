import { basename, extname, isAbsolute } from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { JobFileError } from '../errors.js';
import type { TaskSeed } from '../job/job-spec.js';
import type { ExpandContext } from './expand-context.js';
import { checkTaskNames } from './task-names.js';

/** Extensions that wrap another format, so `s1.fastq.gz` is named `s1`, not `s1.fastq`. */
const COMPRESSION_EXTENSIONS: ReadonlySet<string> = new Set(['.gz', '.bz2', '.xz', '.zst', '.bgz']);

/** `files: glob`: one task per matching file (hidden ones skipped), in path order. */
export async function expandFiles(pattern: string, cwd: string, ctx: ExpandContext): Promise<TaskSeed[]> {
  const where = ctx.locate('tasks.files');
  // expandDirectories off: `data` must match a file named `data`, not everything below a folder.
  const files = await glob(pattern, {
    cwd,
    absolute: true,
    onlyFiles: true,
    dot: false,
    expandDirectories: false,
  });
  if (files.length === 0) {
    const from = isAbsolute(pattern) ? literalBase(pattern) : cwd;
    throw new JobFileError(where, `the glob ${JSON.stringify(pattern)} matches no files in ${from} (hidden files are skipped)`, 'check the path and pattern');
  }
  // Plain code-unit order: the same on every machine, unlike a locale-aware compare.
  files.sort();

  const seeds = files.map((file, index) => ({
    index,
    name: fileStem(file),
    vars: { file },
    inputs: [file],
  }));
  checkTaskNames(
    seeds.map((seed) => ({ name: seed.name, origin: seed.vars.file })),
    where,
    'rename one of the files, or narrow the glob',
  );
  return seeds;
}

/** The base name without its last extension, and without one more if the last was compression. */
export function fileStem(file: string): string {
  const name = basename(file);
  const ext = extname(name);
  const stem = name.slice(0, name.length - ext.length);
  return COMPRESSION_EXTENSIONS.has(ext) ? stem.slice(0, stem.length - extname(stem).length) : stem;
}

/** The folder an absolute glob starts matching from: its leading segments without wildcards. */
function literalBase(pattern: string): string {
  const segments = pattern.split('/');
  const firstDynamic = segments.findIndex((segment) => isDynamicPattern(segment));
  const literal = firstDynamic === -1 ? segments.slice(0, -1) : segments.slice(0, firstDynamic);
  return literal.join('/') || '/';
}
