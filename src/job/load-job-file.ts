import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { LineCounter, isNode, parseDocument, type Document } from 'yaml';
import { JobFileError, UserError } from '../errors.js';
import { compileJob } from './compile-job.js';
import { fieldPath, type Locate } from './field-location.js';
import { formatBytes } from './units.js';
import { validateJobFile } from './validate-job-file.js';
import type { JobSpec } from './job-spec.js';

/** A loaded job and a way to point back into its file. */
export interface LoadedJob {
  spec: JobSpec;
  locate: Locate;
}

export interface LoadOptions {
  /** `--set key=value` overrides of `vars`. */
  set?: Record<string, string>;
  /** Folder the default outdir goes under (the current folder). */
  cwd?: string;
}

/**
 * The largest job file read. Parsing YAML takes tens of times the file's size in memory, and a
 * job file is a recipe, not a data set: long lists belong in a table or a glob.
 */
const MAX_JOB_FILE_BYTES = 1_000_000;

/** Read, validate and compile a YAML or JSON job file. Every problem is a JobFileError. */
function loadJobFile(path: string, options: LoadOptions = {}): LoadedJob {
  const file = resolve(path);
  let text: string;
  try {
    const { size } = statSync(file);
    if (size > MAX_JOB_FILE_BYTES) {
      throw new JobFileError(
        { file: path },
        `the job file is ${formatBytes(size)}, more than the ${formatBytes(MAX_JOB_FILE_BYTES)} a job file may be`,
        'put long lists of items in a CSV/TSV file named by `tasks.table:`, or match input files with `tasks.files:`',
      );
    }
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(`job file ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`, 'check the path', {
      cause: error,
    });
  }
  const { data, locate } = parseYaml(text, path);
  const jobFile = validateJobFile(data, locate);
  const spec = compileJob(jobFile, {
    file,
    defaultName: basename(file, extname(file)),
    baseDir: dirname(file),
    cwd: options.cwd ?? process.cwd(),
    set: options.set ?? {},
    locate,
  });
  return { spec, locate };
}

/** A job given as an object in code (the TypeScript API's `submit` and `map`), not as a file. */
export interface JobObject {
  /** The job, as a job file would hold it once parsed. */
  job: unknown;
  /** Stands for the file in messages, e.g. `<submit>`. */
  label: string;
  /** Relative paths in the job resolve against this folder, and the default outdir goes under it. */
  baseDir: string;
}

/** Where a job comes from: a job file's path, or an object built in code. */
export type JobSource = string | JobObject;

/** Load a job from either source; both are checked by the same schema, with the same messages. */
export function loadJob(source: JobSource, options: LoadOptions = {}): LoadedJob {
  return typeof source === 'string' ? loadJobFile(source, options) : loadJobObject(source, options);
}

/**
 * Validate and compile a job given as an object. Messages are those of a job file, with the
 * label in place of the file and no line: `<submit>: tasks.each[2]: must be ...`. Such a job has
 * no file name to default its name from, so it must have a `name`.
 */
function loadJobObject(source: JobObject, options: LoadOptions = {}): LoadedJob {
  const locate: Locate = (field) => ({ file: source.label, field });
  const jobFile = validateJobFile(source.job, locate);
  if (jobFile.name === undefined) {
    throw new JobFileError(locate('name'), 'is required for a job that has no file', 'add a `name`: letters, digits, ".", "_" and "-"');
  }
  const baseDir = resolve(source.baseDir);
  const spec = compileJob(jobFile, {
    file: source.label,
    defaultName: jobFile.name,
    baseDir,
    cwd: options.cwd ?? baseDir,
    set: options.set ?? {},
    locate,
  });
  return { spec, locate };
}

/** Parse YAML (or JSON) text; a syntax error names the file and line. */
export function parseYaml(text: string, displayName: string): { data: unknown; locate: Locate } {
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const firstError = document.errors[0];
  if (firstError) {
    const line = lines.linePos(firstError.pos[0]).line;
    throw new JobFileError({ file: displayName, line }, `not valid YAML or JSON: ${firstError.message.split('\n')[0]}`, 'fix the syntax at that line');
  }
  const locate: Locate = (field) => ({ file: displayName, field, line: lineOf(document, lines, field) });
  return { data: toData(document, displayName), locate };
}

/** The line of the deepest node that exists on the field's path. */
function lineOf(document: Document, lines: LineCounter, field: string): number | undefined {
  const path = fieldPath(field);
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? document.contents : document.getIn(path.slice(0, depth), true);
    if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}

/** The document's data; aliases that would expand past the parser's limit (an "alias bomb") are refused. */
function toData(document: Document, displayName: string): unknown {
  try {
    return document.toJS();
  } catch (error) {
    // The yaml package throws a ReferenceError once aliases expand past `maxAliasCount`.
    if (error instanceof ReferenceError && /alias/i.test(error.message)) {
      throw new JobFileError({ file: displayName }, 'its YAML aliases (*name) expand to too much data', 'write the values out, or use fewer aliases of aliases', {
        cause: error,
      });
    }
    throw error;
  }
}
