import { describe, expect, it } from 'vitest';
import type { AttemptLaunch } from '../backend.js';
import { ELEMENT_TIME_MARGIN_MS, planArrays } from './array-plan.js';

function launch(id: number, resources: Partial<Pick<AttemptLaunch, 'cpus' | 'memory' | 'timeMs'>> = {}): AttemptLaunch {
  return { id, attemptDir: `/w/${id}.1`, cwd: `/w/${id}.1`, cpus: 1, memory: 2 ** 30, timeMs: 60_000, command: 'true', env: {}, ...resources };
}

describe('planArrays', () => {
  it('puts launches with the same resources in one array, one per element', () => {
    const arrays = planArrays([launch(1), launch(2), launch(3)], { pack: 1, maxArraySize: 100 });
    expect(arrays).toHaveLength(1);
    expect(arrays[0]!.elements.map((element) => element.map((l) => l.id))).toEqual([[1], [2], [3]]);
    expect(arrays[0]!.resources).toEqual({ cpus: 1, memory: 2 ** 30, timeMs: 60_000 + ELEMENT_TIME_MARGIN_MS });
  });

  it('separates launches that ask for different resources (an escalated retry)', () => {
    const arrays = planArrays([launch(1), launch(2, { memory: 3 * 2 ** 30 }), launch(3)], { pack: 1, maxArraySize: 100 });
    expect(arrays.map((array) => array.elements.flat().map((l) => l.id))).toEqual([[1, 3], [2]]);
  });

  it('packs K launches into each element and gives the element their summed time', () => {
    const arrays = planArrays(
      [1, 2, 3, 4, 5, 6, 7].map((id) => launch(id)),
      { pack: 3, maxArraySize: 100 },
    );
    expect(arrays[0]!.elements.map((element) => element.map((l) => l.id))).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
    expect(arrays[0]!.resources.timeMs).toBe(3 * 60_000 + ELEMENT_TIME_MARGIN_MS);
  });

  it('cuts arrays at the array size limit', () => {
    const arrays = planArrays(
      [1, 2, 3, 4, 5].map((id) => launch(id)),
      { pack: 1, maxArraySize: 2 },
    );
    expect(arrays.map((array) => array.elements.length)).toEqual([2, 2, 1]);
  });

  it('leaves time unlimited when the task has no limit', () => {
    expect(planArrays([launch(1, { timeMs: null })], { pack: 4, maxArraySize: 10 })[0]!.resources.timeMs).toBeNull();
  });
});
