// The published types of the TypeScript API, as a user's compiler sees them: imported from the
// built package (dist/, with `stripInternal`), checked by `npm run typecheck`. At run time
// expectTypeOf does nothing; a wrong type fails the compile, and so `npm test`.
import { describe, expectTypeOf, it } from 'vitest';
import {
  Fanout,
  FanoutApiError,
  FanoutRun,
  JobFileError,
  UserError,
  type AlertSummary,
  type ApiErrorCode,
  type AttemptReason,
  type AttemptRecord,
  type CommandItem,
  type FanoutOptions,
  type GatherOutcome,
  type JobDefinition,
  type MapOptions,
  type ProgressEvent,
  type RunOptions,
  type RunState,
  type RunSummary,
  type SourceLocation,
  type TaskCounts,
  type TaskError,
  type TaskResult,
  type TaskState,
} from '../dist/index.js';

describe('the package entry', () => {
  it('exports these values and nothing else: no engine, store or backend', () => {
    expectTypeOf<keyof typeof import('../dist/index.js')>().toEqualTypeOf<'Fanout' | 'FanoutRun' | 'FanoutApiError' | 'JobFileError' | 'UserError'>();
  });
});

describe('Fanout', () => {
  it('is opened, not constructed', () => {
    expectTypeOf<typeof Fanout.open>().parameters.toEqualTypeOf<[options?: FanoutOptions]>();
    expectTypeOf<typeof Fanout.open>().returns.resolves.toEqualTypeOf<Fanout>();
    // Never called: the point is that it does not compile.
    const construct = () => {
      // @ts-expect-error the constructor is private
      new Fanout();
    };
    expectTypeOf(construct).toBeFunction();
  });

  it('submits a job object, maps a command or a function, re-opens a run by id, closes', () => {
    expectTypeOf<Fanout['submit']>().parameters.toEqualTypeOf<[job: JobDefinition, options?: RunOptions]>();
    expectTypeOf<Fanout['submit']>().returns.resolves.toEqualTypeOf<FanoutRun>();
    expectTypeOf<Fanout['map']>().toBeCallableWith('gzip -k {{ item }}', ['a.txt', 2, true, { sample: 's1', lane: 1 }]);
    expectTypeOf<Fanout['map']>().toBeCallableWith('echo {{ item }}', ['a'], { resources: { memory: '2GB', time: '10m' }, fresh: true });
    expectTypeOf<Fanout['map']>().toBeCallableWith(new URL('file:///work.js'), 'measure', [{ any: ['json'] }], { baseDir: '/data' });
    expectTypeOf<Fanout['map']>().toBeCallableWith('/abs/work.js', 'measure', [1, 2, 3]);
    expectTypeOf<Fanout['map']>().returns.resolves.toEqualTypeOf<FanoutRun>();
    expectTypeOf<Fanout['run']>().parameters.toEqualTypeOf<[id: number]>();
    expectTypeOf<Fanout['run']>().returns.resolves.toEqualTypeOf<FanoutRun>();
    expectTypeOf<Fanout['close']>().returns.toEqualTypeOf<Promise<void>>();
  });

  it('takes a command item as a value or a map of values', () => {
    expectTypeOf<CommandItem>().toEqualTypeOf<string | number | boolean | Record<string, string | number | boolean>>();
  });

  it('has the open options of the README', () => {
    expectTypeOf<Pick<FanoutOptions, 'home' | 'store' | 'cpus' | 'memory' | 'grace' | 'concurrency' | 'profile' | 'workdir'>>().toEqualTypeOf<{
      home?: string;
      store?: string;
      cpus?: number;
      memory?: string;
      grace?: string;
      concurrency?: number;
      profile?: string;
      workdir?: string;
    }>();
    expectTypeOf<{ backend: 'slurm'; slurm: { partition: 'short' } }>().toExtend<FanoutOptions>();
    expectTypeOf<{ backend: 'kubernetes' }>().not.toExtend<FanoutOptions>();
  });
});

describe('FanoutRun', () => {
  it('comes from Fanout only', () => {
    const construct = () => {
      // @ts-expect-error the constructor is private
      new FanoutRun();
    };
    expectTypeOf(construct).toBeFunction();
    expectTypeOf(FanoutRun).not.toHaveProperty('of');
  });

  it('follows, waits for, gathers and cancels a run', () => {
    expectTypeOf<FanoutRun['id']>().toEqualTypeOf<number>();
    expectTypeOf<FanoutRun['job']>().toEqualTypeOf<string>();
    expectTypeOf<FanoutRun['progress']>().returns.toEqualTypeOf<AsyncGenerator<ProgressEvent, void, undefined>>();
    expectTypeOf<FanoutRun['wait']>().returns.toEqualTypeOf<Promise<RunSummary>>();
    expectTypeOf<FanoutRun['cancel']>().returns.toEqualTypeOf<Promise<RunSummary>>();
    expectTypeOf<FanoutRun['gather']>().returns.toEqualTypeOf<Promise<TaskResult<unknown>[]>>();
    expectTypeOf<ReturnType<FanoutRun['gather']>>().toEqualTypeOf<Promise<TaskResult[]>>();
  });

  it('keeps what only Fanout uses out of the published types', () => {
    expectTypeOf<FanoutRun>().not.toHaveProperty('engine');
    expectTypeOf<FanoutRun>().not.toHaveProperty('isDrivenHere');
    expectTypeOf<FanoutRun>().not.toHaveProperty('detach');
    expectTypeOf<keyof FanoutRun>().toEqualTypeOf<'id' | 'job' | 'progress' | 'wait' | 'gather' | 'cancel'>();
  });

  it('reports progress and the end in these shapes', () => {
    expectTypeOf<RunState>().toEqualTypeOf<'running' | 'succeeded' | 'failed' | 'cancelled'>();
    expectTypeOf<TaskState>().toEqualTypeOf<'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled'>();
    expectTypeOf<TaskCounts>().toEqualTypeOf<Record<TaskState, number>>();
    expectTypeOf<ProgressEvent>().toEqualTypeOf<{ run: number; job: string; state: RunState; counts: TaskCounts; total: number }>();
    expectTypeOf<GatherOutcome>().toEqualTypeOf<'succeeded' | 'failed' | 'skipped'>();
    expectTypeOf<RunSummary>().toEqualTypeOf<{ run: number; job: string; state: RunState; counts: TaskCounts; gather: GatherOutcome | null }>();
  });
});

describe('RunOptions and MapOptions', () => {
  it('RunOptions: a base folder and fresh', () => {
    expectTypeOf<RunOptions>().toEqualTypeOf<{ baseDir?: string; fresh?: boolean }>();
  });

  it('MapOptions: the job-file fields map does not make, and the run options', () => {
    expectTypeOf<MapOptions>().toHaveProperty('resources');
    expectTypeOf<MapOptions>().toHaveProperty('retry');
    expectTypeOf<MapOptions>().toHaveProperty('concurrency');
    expectTypeOf<MapOptions>().toHaveProperty('outdir');
    expectTypeOf<MapOptions>().toHaveProperty('gather');
    expectTypeOf<MapOptions>().toHaveProperty('vars');
    expectTypeOf<MapOptions>().toHaveProperty('name');
    expectTypeOf<MapOptions>().toHaveProperty('baseDir');
    expectTypeOf<MapOptions>().toHaveProperty('fresh');
    expectTypeOf<MapOptions>().not.toHaveProperty('command');
    expectTypeOf<MapOptions>().not.toHaveProperty('script');
    expectTypeOf<MapOptions>().not.toHaveProperty('tasks');
    expectTypeOf<{ resources: { cpus: 2; memory: '4GB'; time: '2h' }; retry: { max: 2; on: ['oom'] }; fresh: true }>().toExtend<MapOptions>();
  });
});

describe('TaskResult', () => {
  it('carries the value a function returned, typed by gather<T>()', () => {
    expectTypeOf<TaskResult<{ words: number }>['value']>().toEqualTypeOf<{ words: number } | undefined>();
    expectTypeOf<TaskResult>().toEqualTypeOf<{
      name: string;
      index: number;
      state: TaskState;
      outputs: string;
      record: AttemptRecord | null;
      attempts: number;
      image: string | null;
      imageDigest: string | null;
      value: unknown;
      error?: TaskError;
    }>();
    expectTypeOf<TaskError>().toEqualTypeOf<{ reason: AttemptReason | null; message: string; errorName?: string; stack?: string }>();
    expectTypeOf<AttemptReason>().toEqualTypeOf<'ok' | 'exit' | 'oom' | 'timeout' | 'lost' | 'infra' | 'cancelled'>();
  });

  it("carries the attempt's result record", () => {
    expectTypeOf<Pick<AttemptRecord, 'attempt' | 'reason' | 'exitCode' | 'signal' | 'peakMemory' | 'host'>>().toEqualTypeOf<{
      attempt: number;
      reason: AttemptReason | null;
      exitCode: number | null;
      signal: string | null;
      peakMemory: number | null;
      host: string | null;
    }>();
  });
});

describe('errors', () => {
  it('UserError: a mistake the user can fix, with the fix', () => {
    expectTypeOf<UserError>().toExtend<Error>();
    expectTypeOf<UserError['fix']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<UserError['describe']>().toEqualTypeOf<() => string>();
  });

  it('JobFileError: a UserError that points into the job file', () => {
    expectTypeOf<JobFileError>().toExtend<UserError>();
    expectTypeOf<JobFileError['location']>().toEqualTypeOf<SourceLocation>();
    expectTypeOf<SourceLocation>().toEqualTypeOf<{ file: string; line?: number; field?: string }>();
  });

  it('FanoutApiError: a UserError with a code to tell cases apart, and the item at fault', () => {
    expectTypeOf<FanoutApiError>().toExtend<UserError>();
    expectTypeOf<FanoutApiError['code']>().toEqualTypeOf<ApiErrorCode>();
    expectTypeOf<FanoutApiError['index']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<ApiErrorCode>().toEqualTypeOf<
      'bad-option' | 'item-not-json' | 'item-too-big' | 'module-not-importable' | 'export-not-function' | 'no-such-run' | 'closed'
    >();
    expectTypeOf(FanoutApiError).constructorParameters.toEqualTypeOf<
      [code: ApiErrorCode, problem: string, fix?: string, options?: { cause?: unknown; index?: number }]
    >();
  });
});

describe('alerts', () => {
  it('a webhook or command gets one of two summaries, told apart by event', () => {
    expectTypeOf<AlertSummary['event']>().toEqualTypeOf<'finished' | 'failed' | 'task_failed'>();
  });
});
