import { describe, expect, it } from 'vitest';
import { expandEach } from './each.js';
import { jobFileError, testContext } from './fixtures/test-context.js';

const ctx = testContext();

describe('expandEach with plain values', () => {
  it('names tasks by value and gives the value as `item`, stringified', () => {
    expect(expandEach(['a b', 2, true, '$(id)'], ctx)).toEqual([
      { index: 0, name: 'a b', vars: { item: 'a b' }, inputs: [] },
      { index: 1, name: '2', vars: { item: '2' }, inputs: [] },
      { index: 2, name: 'true', vars: { item: 'true' }, inputs: [] },
      { index: 3, name: '$(id)', vars: { item: '$(id)' }, inputs: [] },
    ]);
  });

  it('names every task by index when one value is not a usable name', () => {
    expect(expandEach(['a', 'b/c'], ctx).map((seed) => seed.name)).toEqual(['0', '1']);
    expect(expandEach(['a', ''], ctx).map((seed) => seed.name)).toEqual(['0', '1']);
  });

  it('names every task by index when two values are equal', () => {
    const seeds = expandEach(['x', 1, '1'], ctx);
    expect(seeds.map((seed) => seed.name)).toEqual(['0', '1', '2']);
    expect(seeds.map((seed) => seed.vars.item)).toEqual(['x', '1', '1']);
  });

  it('rejects an empty list', async () => {
    await jobFileError(() => expandEach([], ctx), 'tasks.each');
  });

  it('rejects a map among plain values', async () => {
    const error = await jobFileError(() => expandEach(['a', { k: 'v' }], ctx), 'tasks.each');
    expect(error.message).toMatch(/item 1 is a map but item 0 is a plain value/);
  });
});

describe('expandEach with maps', () => {
  it('makes each key a variable and names tasks by the `name` key', () => {
    const items = [
      { name: 's1', reads: 100, paired: true },
      { name: 's2', reads: 5, paired: false },
    ];
    expect(expandEach(items, ctx)).toEqual([
      { index: 0, name: 's1', vars: { reads: '100', paired: 'true' }, inputs: [] },
      { index: 1, name: 's2', vars: { reads: '5', paired: 'false' }, inputs: [] },
    ]);
  });

  it('names tasks by index without a `name` key', () => {
    const seeds = expandEach([{ k: 'a' }, { k: 'a' }], ctx);
    expect(seeds.map((seed) => [seed.name, seed.vars])).toEqual([
      ['0', { k: 'a' }],
      ['1', { k: 'a' }],
    ]);
  });

  it('accepts the same keys in any order', () => {
    const seeds = expandEach(
      [
        { a: 1, b: 2 },
        { b: 3, a: 4 },
      ],
      ctx,
    );
    expect(seeds[1]?.vars).toEqual({ a: '4', b: '3' });
  });

  it('names the item and the key that is missing', async () => {
    const error = await jobFileError(() => expandEach([{ a: 1, b: 2 }, { a: 1, b: 2 }, { a: 3 }], ctx), 'tasks.each');
    expect(error.message).toMatch(/item 2 has no key "b", which item 0 has/);
    expect(error.fix).toBe('give every item the same keys');
  });

  it('names the item and the key that is extra', async () => {
    const error = await jobFileError(() => expandEach([{ a: 1 }, { a: 2, c: 3 }], ctx), 'tasks.each');
    expect(error.message).toMatch(/item 1 has the key "c", which item 0 does not have/);
  });

  it('rejects a plain value among maps', async () => {
    const error = await jobFileError(() => expandEach([{ a: 1 }, 'b'], ctx), 'tasks.each');
    expect(error.message).toMatch(/item 1 is a plain value but item 0 is a map/);
  });

  it('rejects duplicate and invalid `name` values, naming the items', async () => {
    const duplicate = await jobFileError(() => expandEach([{ name: 'x' }, { name: 'y' }, { name: 'x' }], ctx), 'tasks.each');
    expect(duplicate.message).toMatch(/"x" comes from both item 0 and item 2/);
    const invalid = await jobFileError(() => expandEach([{ name: '..' }], ctx), 'tasks.each');
    expect(invalid.message).toMatch(/"\.\." \(from item 0\)/);
  });

  it('rejects keys that cannot be template variables', async () => {
    const reserved = await jobFileError(() => expandEach([{ out: 'x' }], ctx), 'tasks.each');
    expect(reserved.message).toMatch(/the key "out" is reserved/);
    const dashed = await jobFileError(() => expandEach([{ 'read-1': 'x' }], ctx), 'tasks.each');
    expect(dashed.message).toMatch(/the key "read-1" must be letters, digits and _/);
  });
});
