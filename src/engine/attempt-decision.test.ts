import { describe, expect, it } from 'vitest';
import { ATTEMPT_REASONS, type AttemptReason, type RetryPolicy } from '../job/job-spec.js';
import { decideAttempt, type EndedAttempt, type RunRules } from './attempt-decision.js';

const GB = 1e9;

function ended(
  reason: AttemptReason,
  overrides: Partial<EndedAttempt> & { attempts?: number; retryBase?: number; memory?: number | null; timeMs?: number | null } = {},
): EndedAttempt {
  const { attempts = 1, retryBase = 0, memory = 1 * GB, timeMs = 60_000, ...rest } = overrides;
  return {
    task: { index: 3, name: 'sample-3', cacheKey: 'key-3', attempts, retryBase, memory, timeMs },
    attempt: attempts,
    result: { reason, exitCode: reason === 'exit' ? 1 : null, signal: null, startedAt: 1, endedAt: 2, peakMemory: 5, cpuMs: 1, host: 'h' },
    interruption: 'none',
    ...rest,
  };
}

function rules(retry: Partial<RetryPolicy> = {}, overrides: Partial<RunRules> = {}): RunRules {
  return {
    runId: 7,
    retry: { max: 2, on: ['oom', 'timeout', 'lost', 'exit'], escalate: { memory: 2, time: 1.5 }, ...retry },
    outdir: '/out',
    stopping: false,
    memoryCeiling: 16 * GB,
    ...overrides,
  };
}

describe('decideAttempt: what an ended attempt means', () => {
  // Every reason × whether the policy retries it × whether the budget is spent.
  const table: Array<[AttemptReason, 'listed' | 'not listed', 'budget left' | 'budget spent', string]> = [];
  for (const reason of ATTEMPT_REASONS as ReadonlySet<AttemptReason>) {
    for (const listed of ['listed', 'not listed'] as const) {
      for (const budget of ['budget left', 'budget spent'] as const) {
        const expected =
          reason === 'ok'
            ? 'succeeded'
            : reason === 'cancelled'
              ? 'cancelled'
              : reason === 'infra' || listed === 'not listed' || budget === 'budget spent'
                ? 'failed'
                : 'pending';
        table.push([reason, listed, budget, expected]);
      }
    }
  }

  it.each(table)('%s, %s in retry.on, %s → %s', (reason, listed, budget, expected) => {
    const on = listed === 'listed' ? (['oom', 'timeout', 'lost', 'exit', 'infra'] as RetryPolicy['on']) : [];
    const change = decideAttempt(ended(reason, { attempts: budget === 'budget left' ? 2 : 3 }), rules({ on, max: 2 }));
    expect(change.task.state).toBe(expected);
    expect(change.task.retryBase).toBe(0);
    expect(change.cache !== undefined).toBe(reason === 'ok');
  });

  it('records a succeeded attempt as done work under its cache key, at its final output', () => {
    const change = decideAttempt(ended('ok', { attempts: 2 }), rules());
    expect(change).toMatchObject({ runId: 7, index: 3, attempt: 2, cache: { key: 'key-3', runId: 7, index: 3, attempt: 2, out: '/out/sample-3' } });
  });

  it('escalates the memory of an oom retry, capped by the ceiling the backend declares', () => {
    expect(decideAttempt(ended('oom', { memory: 3 * GB }), rules()).task).toMatchObject({ state: 'pending', memory: 6 * GB, timeMs: 60_000 });
    expect(decideAttempt(ended('oom', { memory: 10 * GB }), rules()).task).toMatchObject({ state: 'pending', memory: 16 * GB });
    expect(decideAttempt(ended('oom', { memory: null }), rules()).task).toMatchObject({ state: 'pending', memory: null });
  });

  it('escalates the time of a timeout retry and nothing else', () => {
    expect(decideAttempt(ended('timeout', { timeMs: 60_000 }), rules()).task).toMatchObject({ state: 'pending', memory: 1 * GB, timeMs: 90_000 });
    expect(decideAttempt(ended('exit'), rules()).task).toMatchObject({ state: 'pending', memory: 1 * GB, timeMs: 60_000 });
    expect(decideAttempt(ended('lost'), rules()).task).toMatchObject({ state: 'pending', memory: 1 * GB, timeMs: 60_000 });
  });

  it('counts only attempts since the last reset against the budget', () => {
    expect(decideAttempt(ended('exit', { attempts: 5, retryBase: 3 }), rules({ max: 2 })).task.state).toBe('pending');
    expect(decideAttempt(ended('exit', { attempts: 6, retryBase: 3 }), rules({ max: 2 })).task.state).toBe('failed');
  });

  it('retries an attempt handed back by its worker without charging the task, whatever it ended with', () => {
    for (const reason of ['cancelled', 'lost', 'exit', 'oom'] as const) {
      const change = decideAttempt(ended(reason, { attempts: 3, interruption: 'handed-back' }), rules({ max: 0 }));
      expect(change.task).toMatchObject({ state: 'pending', memory: 1 * GB, timeMs: 60_000, retryBase: 1 });
    }
  });

  it('retries a lost attempt whose coordinator died, or that never started, without charging the task', () => {
    expect(decideAttempt(ended('lost', { interruption: 'supervisor-lost', attempts: 4 }), rules({ max: 0, on: [] })).task).toMatchObject({
      state: 'pending',
      retryBase: 1,
    });
    const neverStarted = ended('lost', { attempts: 4 });
    neverStarted.result = { ...neverStarted.result, notStarted: true };
    expect(decideAttempt(neverStarted, rules({ max: 0, on: [] })).task).toMatchObject({ state: 'pending', retryBase: 1 });
  });

  it('charges other results of an attempt whose coordinator died like any other', () => {
    expect(decideAttempt(ended('exit', { interruption: 'supervisor-lost' }), rules({ on: [] })).task).toMatchObject({ state: 'failed', retryBase: 0 });
    expect(decideAttempt(ended('ok', { interruption: 'supervisor-lost' }), rules()).task.state).toBe('succeeded');
  });

  it('retries nothing once the run is stopping: what would be retried is cancelled', () => {
    const stopping = rules({}, { stopping: true });
    expect(decideAttempt(ended('oom'), stopping).task.state).toBe('cancelled');
    expect(decideAttempt(ended('lost', { interruption: 'handed-back' }), stopping).task).toMatchObject({ state: 'cancelled', retryBase: 1 });
    expect(decideAttempt(ended('exit', { attempts: 3 }), stopping).task.state).toBe('failed');
    expect(decideAttempt(ended('ok'), stopping).task.state).toBe('succeeded');
  });
});
