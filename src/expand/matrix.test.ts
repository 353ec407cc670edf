import { describe, expect, it } from 'vitest';
import { jobFileError, testContext } from './fixtures/test-context.js';
import { expandMatrix } from './matrix.js';

const ctx = testContext();

describe('expandMatrix', () => {
  it('varies the first axis slowest and names tasks by index', () => {
    expect(expandMatrix({ a: [1, 2], b: ['x', 'y'] }, ctx)).toEqual([
      { index: 0, name: '0', vars: { a: '1', b: 'x' }, inputs: [] },
      { index: 1, name: '1', vars: { a: '1', b: 'y' }, inputs: [] },
      { index: 2, name: '2', vars: { a: '2', b: 'x' }, inputs: [] },
      { index: 3, name: '3', vars: { a: '2', b: 'y' }, inputs: [] },
    ]);
  });

  it('multiplies three axes and stringifies values', () => {
    const seeds = expandMatrix({ k: [1, 2, 3], flag: [true, false], s: ['only'] }, ctx);
    expect(seeds).toHaveLength(6);
    expect(seeds[5]?.vars).toEqual({ k: '3', flag: 'false', s: 'only' });
  });

  it('rejects an empty axis, naming it', async () => {
    const error = await jobFileError(() => expandMatrix({ a: [1], b: [] }, ctx), 'tasks.matrix');
    expect(error.message).toMatch(/the axis "b" has no values/);
  });

  it('rejects a matrix without axes', async () => {
    await jobFileError(() => expandMatrix({}, ctx), 'tasks.matrix');
  });

  it('rejects axes that cannot be template variables or would contradict the task name', async () => {
    const reserved = await jobFileError(() => expandMatrix({ index: [1] }, ctx), 'tasks.matrix');
    expect(reserved.message).toMatch(/the axis "index" is reserved/);
    const named = await jobFileError(() => expandMatrix({ name: ['a'] }, ctx), 'tasks.matrix');
    expect(named.message).toMatch(/the axis "name" is the task name/);
  });
});
