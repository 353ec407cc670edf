/**
 * The worker process of a function map: one per task, started by the task's command as
 * `node map-worker.js <module URL> <export name>`. It imports the module, calls the export with
 * the task's item (JSON in FANOUT_ITEM), and writes what it returns as JSON into the task's
 * outputs (FANOUT_OUT/return.json, written to a temp name and renamed). What the function throws
 * ends the process with exit code 1 and its message and stack as the last line of stderr.
 */
import { renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describeJsonProblem, jsonProblem } from './json-value.js';
import { ERROR_LINE_PREFIX, RETURN_FILE } from './map-protocol.js';

let settled = false;

async function main(): Promise<void> {
  const [moduleUrl, exportName] = process.argv.slice(2);
  const itemJson = process.env.FANOUT_ITEM;
  const out = process.env.FANOUT_OUT;
  if (!moduleUrl || !exportName || itemJson === undefined || !out) {
    throw new Error('map-worker.js runs inside a fanout task: it needs <module URL> <export name>, FANOUT_ITEM and FANOUT_OUT');
  }
  const module = (await import(moduleUrl)) as Record<string, unknown>;
  const fn = module[exportName];
  if (typeof fn !== 'function') throw new Error(`${moduleUrl} does not export a function named ${exportName}`);
  const value: unknown = await (fn as (item: unknown) => unknown)(JSON.parse(itemJson));
  if (value === undefined) return;
  const problem = jsonProblem(value);
  if (problem)
    throw new TypeError(
      `${describeJsonProblem(`the value ${exportName} returned`, problem)}; return plain data (objects, arrays, strings, finite numbers, booleans, null)`,
    );
  const target = join(out, RETURN_FILE);
  writeFileSync(`${target}.tmp`, JSON.stringify(value));
  renameSync(`${target}.tmp`, target);
}

function report(error: unknown): void {
  const thrown = error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : { name: 'Error', message: String(error), stack: undefined };
  // Synchronous writes: the process exits right after.
  writeSync(2, `${thrown.stack ?? `${thrown.name}: ${thrown.message}`}\n${ERROR_LINE_PREFIX}${JSON.stringify(thrown)}\n`);
}

// A promise that nothing can settle any more (no timer, no socket left) would let Node exit as
// if all went well; it is a failure. One that still waits on something runs until the task's
// time limit stops it.
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  report(new Error('the function returned a promise that never settles: nothing was left that could settle it'));
  process.exit(1);
});

main().then(
  () => {
    settled = true;
    // Handles the function left open (a connection, a timer) must not keep the task running.
    process.exit(0);
  },
  (error: unknown) => {
    settled = true;
    report(error);
    process.exit(1);
  },
);
