import { JobFileError } from '../errors.js';
import type { Scalar, TaskSeed } from '../job/job-spec.js';
import type { ExpandContext } from './expand-context.js';
import { variableProblem } from './variable-names.js';

/**
 * The most combinations a matrix may give. A few short axes multiply into more tasks than
 * planning can hold in memory; that many tasks want a table (one row per task) instead.
 */
const MAX_MATRIX_TASKS = 1_000_000;

/** `matrix: {a: [..], b: [..]}`: one task per combination, the first axis varying slowest. */
export function expandMatrix(axes: Record<string, Scalar[]>, ctx: ExpandContext): TaskSeed[] {
  const where = ctx.locate('tasks.matrix');
  const entries = Object.entries(axes);
  if (entries.length === 0) {
    throw new JobFileError(where, 'the matrix has no axes', 'add at least one axis with values');
  }
  for (const [axis, values] of entries) {
    // Matrix tasks are named by index, so an axis called `name` would disagree with the task name.
    const problem = axis === 'name' ? 'is the task name' : variableProblem(axis);
    if (problem !== null) {
      throw new JobFileError(where, `the axis ${JSON.stringify(axis)} ${problem}`, 'rename the axis');
    }
    if (values.length === 0) {
      throw new JobFileError(where, `the axis ${JSON.stringify(axis)} has no values`, 'give every axis at least one value');
    }
  }

  const count = entries.reduce((product, [, values]) => product * values.length, 1);
  if (count > MAX_MATRIX_TASKS) {
    throw new JobFileError(
      where,
      `the matrix gives ${count} combinations, more than ${MAX_MATRIX_TASKS} tasks`,
      'split the job into several, or list the tasks wanted in a CSV/TSV file named by `tasks.table:`',
    );
  }
  let combinations: Array<Record<string, string>> = [{}];
  for (const [axis, values] of entries) {
    combinations = combinations.flatMap((vars) => values.map((value) => ({ ...vars, [axis]: String(value) })));
  }
  return combinations.map((vars, index) => ({ index, name: String(index), vars, inputs: [] }));
}
