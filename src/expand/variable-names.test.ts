import { describe, expect, it } from 'vitest';
import { columnToVariable, variableProblem } from './variable-names.js';

describe('columnToVariable', () => {
  it.each([
    ['sample', 'sample'],
    ['Sample ID', 'Sample_ID'],
    [' read-1 (R1) ', 'read_1_R1'],
    ['a__b', 'a__b'],
    ['__x__', 'x'],
    ['2nd read', '_2nd_read'],
    ['-3', '_3'],
    ['%%', ''],
    ['', ''],
    ['naïve', 'na_ve'],
  ])('%j becomes %j', (column, variable) => {
    expect(columnToVariable(column)).toBe(variable);
  });
});

describe('variableProblem', () => {
  it('accepts identifiers', () => {
    expect(variableProblem('sample_1')).toBeNull();
    expect(variableProblem('_x')).toBeNull();
  });

  it('rejects empty names, non-identifiers and built-in names', () => {
    expect(variableProblem('')).toBe('is empty');
    expect(variableProblem('read-1')).toMatch(/letters, digits and _/);
    expect(variableProblem('1x')).toMatch(/not starting with a digit/);
    for (const name of ['index', 'out', 'outdir', 'outputs', 'manifest']) {
      expect(variableProblem(name)).toMatch(/reserved/);
    }
  });
});
