import type { Sandbox } from './harness.js';

/**
 * A module of functions for function-map tests, written into a sandbox (tasks import it by its
 * absolute path, as users' modules are).
 */
const WORK_MODULE = `
import { setTimeout as sleep } from 'node:timers/promises';

/** Doubles n; waits delay ms first, so tasks finish in another order than their items. */
export async function double(item) {
  await sleep(item.delay ?? 0);
  return { n: item.n * 2, label: item.label ?? null };
}

export async function failOnOdd(n) {
  if (n % 2 === 1) throw new RangeError('odd item ' + n);
  return n;
}

/** Never settles, but keeps the process busy: only a time limit stops it. */
export function forever() {
  return new Promise(() => setInterval(() => {}, 1000));
}

/** Never settles, and nothing is left that could settle it. */
export function dangling() {
  return new Promise(() => {});
}

export async function nothing() {}

export async function returnsFunction() {
  return { f: () => 1 };
}

export const notAFunction = 42;
`;

export function writeWorkModule(box: Sandbox): string {
  return box.write('work.mjs', WORK_MODULE);
}
