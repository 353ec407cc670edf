/**
 * fanout's TypeScript API: the same engine, store and backends as the `fanout` command, from code.
 *
 * @packageDocumentation
 */
export { Fanout, type CommandItem, type MapOptions, type RunOptions } from './api/fanout.js';
export { FanoutRun, type ProgressEvent, type RunSummary } from './api/fanout-run.js';
export type { TaskError, TaskResult } from './api/task-results.js';
export type { FanoutOptions } from './api/open-options.js';
export { FanoutApiError, JobFileError, UserError, type ApiErrorCode, type SourceLocation } from './errors.js';
export type { BackendName, ClusterSettings, ContainerSettings, JobDefinition, SgeSettings, SlurmSettings } from './job/job-schema.js';
export type { AttemptReason } from './job/job-spec.js';
export type { AttemptRecord, GatherOutcome, RunState, TaskCounts, TaskState } from './store/records.js';
export type { AlertSummary, FailedTaskSummary, RunEndedAlert, TaskFailedAlert } from './notify/alert-summary.js';
