import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FanoutApiError } from '../errors.js';
import type { JobSpec } from '../job/job-spec.js';
import { describeJsonProblem, jsonProblem } from './json-value.js';

/**
 * A function map as a job: one task per item, each running the worker script (map-worker.js)
 * with `node`, by absolute paths, so that it runs on any backend whose nodes see those paths.
 * Everything is checked here, in the calling process, before anything is submitted.
 */

/** The worker script, compiled beside this file. */
const WORKER = fileURLToPath(new URL('./map-worker.js', import.meta.url));

/**
 * Linux refuses an environment string over 128 KiB (MAX_ARG_STRLEN), and the item travels in
 * FANOUT_ITEM; a margin keeps room for the variable's name.
 */
const MAX_ITEM_JSON_BYTES = 100_000;

/** The job variables of a function map; `fanout_export` marks a run as one when its results are gathered. */
const COMMAND = '{{ fanout_node }} {{ fanout_worker }} {{ fanout_module }} {{ fanout_export }}';

/** True when the run's job came from a function map, so its tasks' outputs hold return values. */
export function isFunctionMap(spec: Pick<JobSpec, 'vars'>): boolean {
  return spec.vars.fanout_export !== undefined;
}

/**
 * The job-file fields of a function map: its name (unless given), command, tasks and the
 * variables the command needs. The module's digest is among them, so an edited module does not
 * count as done work (only the module's own file: what it imports is not looked at).
 */
export async function functionMapJob(
  module: string | URL,
  exportName: string,
  items: readonly unknown[],
  baseDir: string,
): Promise<{ name: string; command: string; tasks: { each: Array<Record<string, string>> }; vars: Record<string, string> }> {
  const url = moduleUrl(module, baseDir);
  const file = fileURLToPath(url);
  if (!existsSync(file)) {
    throw new FanoutApiError(
      'module-not-importable',
      `the module ${file} does not exist`,
      'pass an absolute path or a file: URL, e.g. new URL("./work.js", import.meta.url)',
    );
  }
  let exports: Record<string, unknown>;
  try {
    exports = (await import(url.href)) as Record<string, unknown>;
  } catch (error) {
    throw new FanoutApiError(
      'module-not-importable',
      `the module ${file} cannot be imported: ${(error as Error).message ?? error}`,
      'fix the module so that `node` can import it',
      { cause: error },
    );
  }
  if (typeof exports[exportName] !== 'function') {
    const functions = Object.keys(exports).filter((key) => typeof exports[key] === 'function');
    throw new FanoutApiError(
      'export-not-function',
      `the module ${file} does not export a function named "${exportName}"${exportName in exports ? ` (it is ${typeof exports[exportName]})` : ''}`,
      functions.length ? `it exports the functions: ${functions.join(', ')}` : 'export an async function from it',
    );
  }
  const each = items.map((item, index) => {
    const problem = jsonProblem(item);
    if (problem) {
      throw new FanoutApiError(
        'item-not-json',
        describeJsonProblem(`item ${index}`, problem),
        'pass items made of objects, arrays, strings, finite numbers, booleans and null',
        { index },
      );
    }
    const json = JSON.stringify(item);
    const bytes = Buffer.byteLength(json);
    if (bytes > MAX_ITEM_JSON_BYTES) {
      throw new FanoutApiError(
        'item-too-big',
        `item ${index} is ${bytes} bytes as JSON, more than the ${MAX_ITEM_JSON_BYTES} a task's environment can carry`,
        'pass a path to a file holding the data instead',
        { index },
      );
    }
    return { name: String(index), item: json };
  });
  return {
    name: `map-${exportName.replace(/[^A-Za-z0-9._-]+/g, '_')}`,
    command: COMMAND,
    tasks: { each },
    vars: {
      fanout_node: process.execPath,
      fanout_worker: WORKER,
      fanout_module: url.href,
      fanout_export: exportName,
      fanout_module_digest: createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16),
    },
  };
}

function moduleUrl(module: string | URL, baseDir: string): URL {
  const url =
    module instanceof URL ? module : /^[A-Za-z][A-Za-z0-9+.-]+:/.test(module) && !isAbsolute(module) ? new URL(module) : pathToFileURL(resolve(baseDir, module));
  if (url.protocol !== 'file:') {
    throw new FanoutApiError(
      'module-not-importable',
      `the module ${url.href} is not a file`,
      'the task runs in another process, maybe on another machine: pass a path or a file: URL it can reach',
    );
  }
  return url;
}
