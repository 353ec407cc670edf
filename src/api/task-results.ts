import type { Engine } from '../engine/engine.js';
import { finalOut } from '../engine/home-layout.js';
import { taskImageIdentity } from '../engine/plan-job.js';
import { imageFields } from '../run-json.js';
import type { AttemptReason } from '../job/job-spec.js';
import type { AttemptFiles } from '../storage/attempt-files.js';
import { forEachLimited, TREE_TRANSFERS } from '../storage/parallel.js';
import type { AttemptRecord, RunRecord, TaskState } from '../store/records.js';
import { isFunctionMap } from './function-map.js';
import { thrownErrorIn } from './map-protocol.js';

/** One task of a run, as `run.gather()` returns it. */
export interface TaskResult<T = unknown> {
  /** The task's name (its output folder's name); for a function map, the item's index. */
  name: string;
  /** Its position among the run's tasks: the item's index for `map`. */
  index: number;
  state: TaskState;
  /** Where its committed outputs are (a folder, or an s3:// prefix); there only once it succeeded. */
  outputs: string;
  /**
   * The result record of the attempt behind its outcome: its last attempt, or for a task
   * skipped as done, the earlier attempt whose work it reused. Null when it never ran.
   */
  record: AttemptRecord | null;
  /** Attempts this run made for it. */
  attempts: number;
  /** The container image it ran in (rendered); null when its job has no `container:`. */
  image: string | null;
  /** That image's identity when the run was planned (`podman image inspect --format {{.Id}}`); null without a container. */
  imageDigest: string | null;
  /** For a function map: what the function returned (undefined when it returned undefined, or failed). */
  value: T | undefined;
  /** Why it did not succeed: for failed and cancelled tasks. */
  error?: TaskError;
}

/** Why a task did not succeed. */
export interface TaskError {
  /** How its last attempt ended (`exit`, `oom`, `timeout`, `lost`, `infra`, `cancelled`); null if it never ran. */
  reason: AttemptReason | null;
  /** What the function threw, or what happened to the attempt. */
  message: string;
  /** The thrown error's name, for a function map whose function threw. */
  errorName?: string;
  /** The thrown error's stack, for a function map whose function threw. */
  stack?: string;
}

/** @internal Every task's result, in task (item) order, read from the store, and from the outputs and logs through `files`. */
export async function taskResults(engine: Engine, files: AttemptFiles, run: RunRecord): Promise<TaskResult[]> {
  const tasks = await engine.store.listTasks(run.id);
  const returns = isFunctionMap(run.spec);
  const results = new Array<TaskResult>(tasks.length);
  await forEachLimited(tasks, TREE_TRANSFERS, async (task) => {
    const behind = await engine.attemptsBehind(run.id, task);
    const record = behind.at(-1) ?? null;
    const outputs = finalOut(run.spec.outdir, task.name);
    const result: TaskResult = {
      name: task.name,
      index: task.index,
      state: task.state,
      outputs,
      record,
      attempts: task.attempts,
      ...imageFields(taskImageIdentity(run.spec, task)),
      value: undefined,
    };
    if (returns && (task.state === 'succeeded' || task.state === 'skipped')) result.value = await files.readReturnValue(outputs);
    if (task.state === 'failed' || task.state === 'cancelled') result.error = await taskError(files, record, returns);
    results[task.index] = result;
  });
  return results;
}

async function taskError(files: AttemptFiles, record: AttemptRecord | null, returns: boolean): Promise<TaskError> {
  if (record === null) return { reason: null, message: 'it never ran: the run was cancelled first' };
  if (returns && record.reason === 'exit') {
    const stderr = await files.readLogText(record.dir, 'stderr');
    const thrown = stderr === null ? null : thrownErrorIn(stderr);
    if (thrown) return { reason: record.reason, message: thrown.message, errorName: thrown.name, stack: thrown.stack };
  }
  return { reason: record.reason, message: describeEnd(record) };
}

function describeEnd(record: AttemptRecord): string {
  switch (record.reason) {
    case 'exit':
      return `its command exited with code ${record.exitCode}`;
    case 'oom':
      return 'it ran out of memory (resources.memory)';
    case 'timeout':
      return 'it was stopped at its time limit (resources.time)';
    default:
      return record.error ?? `its attempt ended: ${record.reason ?? 'still running'}`;
  }
}
