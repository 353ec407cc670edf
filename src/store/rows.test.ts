import { describe, expect, it } from 'vitest';
import { parseStoredSpec } from './rows.js';

describe('parseStoredSpec', () => {
  it('reads the memory of a spec stored before it was named `memory`', () => {
    const old = JSON.stringify({ name: 'old', resources: { cpus: 2, memoryBytes: 4e9, timeMs: 60_000 } });
    expect(parseStoredSpec(old).resources).toEqual({ cpus: 2, memory: 4e9, timeMs: 60_000 });
  });

  it('leaves a current spec as it is', () => {
    const current = { name: 'new', resources: { cpus: 1, memory: null, timeMs: null } };
    expect(parseStoredSpec(JSON.stringify(current))).toEqual(current);
  });
});
