import { JobFileError } from '../errors.js';
import type { Scalar, TaskSeed } from '../job/job-spec.js';
import type { ExpandContext } from './expand-context.js';
import { areUsableNames, checkTaskNames } from './task-names.js';
import { variableProblem } from './variable-names.js';

type EachItem = Scalar | Record<string, Scalar>;

/** `each: [values]`: one task per item; plain values give `item`, maps give one variable per key. */
export function expandEach(items: readonly EachItem[], ctx: ExpandContext): TaskSeed[] {
  const where = ctx.locate('tasks.each');
  const [first] = items;
  if (first === undefined) {
    throw new JobFileError(where, 'the list is empty', 'add at least one item');
  }
  return isMap(first) ? expandMaps(items, first, ctx) : expandScalars(items, ctx);
}

function isMap(item: EachItem): item is Record<string, Scalar> {
  return typeof item === 'object';
}

function expandScalars(items: readonly EachItem[], ctx: ExpandContext): TaskSeed[] {
  const values = items.map((item, index) => {
    if (isMap(item)) {
      throw new JobFileError(
        ctx.locate('tasks.each'),
        `item ${index} is a map but item 0 is a plain value`,
        'make every item a plain value, or every item a map with the same keys',
      );
    }
    return String(item);
  });
  // Naming by value reads better in outputs, but only if it works for all items: a mix of
  // value names and index names would make names depend on unrelated items.
  const byValue = areUsableNames(values);
  return values.map((item, index) => ({
    index,
    name: byValue ? item : String(index),
    vars: { item },
    inputs: [],
  }));
}

function expandMaps(items: readonly EachItem[], first: Record<string, Scalar>, ctx: ExpandContext): TaskSeed[] {
  const where = ctx.locate('tasks.each');
  const keys = Object.keys(first);
  for (const key of keys) {
    const problem = key === 'name' ? null : variableProblem(key);
    if (problem !== null) {
      throw new JobFileError(where, `the key ${JSON.stringify(key)} ${problem}`, 'rename the key');
    }
  }

  const seeds = items.map((item, index): TaskSeed => {
    if (!isMap(item)) {
      throw new JobFileError(where, `item ${index} is a plain value but item 0 is a map`, 'make every item a map with the same keys, or every item a plain value');
    }
    checkSameKeys(item, index, keys, ctx);
    const vars: Record<string, string> = {};
    for (const key of keys) vars[key] = String(item[key]);
    const { name, ...rest } = vars;
    // `name` is the task's name, which the template already offers; TaskSeed.vars leaves it out.
    return { index, name: name ?? String(index), vars: rest, inputs: [] };
  });
  checkTaskNames(
    seeds.map((seed) => ({ name: seed.name, origin: `item ${seed.index}` })),
    where,
    'give every item a unique `name`',
  );
  return seeds;
}

function checkSameKeys(item: Record<string, Scalar>, index: number, keys: readonly string[], ctx: ExpandContext): void {
  const missing = keys.find((key) => !Object.hasOwn(item, key));
  const extra = Object.keys(item).find((key) => !keys.includes(key));
  if (missing === undefined && extra === undefined) return;
  const problem =
    missing !== undefined
      ? `item ${index} has no key ${JSON.stringify(missing)}, which item 0 has`
      : `item ${index} has the key ${JSON.stringify(extra)}, which item 0 does not have`;
  throw new JobFileError(ctx.locate('tasks.each'), problem, 'give every item the same keys');
}
