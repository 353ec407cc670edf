import { describe, expect, it } from 'vitest';
import { ATTEMPT_REASONS, type AttemptReason, type RetryPolicy } from '../job/job-spec.js';
import type { RunRecord } from '../store/records.js';
import { decideAttempt, rulesOf, type EndedAttempt, type RunRules } from './attempt-decision.js';

const GB = 1e9;

function ended(
  reason: AttemptReason,
  overrides: Partial<EndedAttempt> & { attempts?: number; retryBase?: number; platformFailures?: number; memory?: number | null; timeMs?: number | null } = {},
): EndedAttempt {
  const { attempts = 1, retryBase = 0, platformFailures = 0, memory = 1 * GB, timeMs = 60_000, ...rest } = overrides;
  return {
    task: { index: 3, name: 'sample-3', cacheKey: 'key-3', attempts, retryBase, platformFailures, memory, timeMs },
    attempt: attempts,
    result: { reason, exitCode: reason === 'exit' ? 1 : null, signal: null, startedAt: 1, endedAt: 2, peakMemory: 5, cpuMs: 1, host: 'h' },
    interruption: 'none',
    ...rest,
  };
}

function rules(retry: Partial<RetryPolicy> = {}, overrides: Partial<RunRules> = {}): RunRules {
  return {
    runId: 7,
    retry: { max: 2, on: ['oom', 'timeout', 'lost', 'exit'], escalate: { memory: 2, time: 1.5 }, platformMax: 3, ...retry },
    outdir: '/out',
    stopping: false,
    memoryCeiling: 16 * GB,
    ...overrides,
  };
}

describe('decideAttempt: what an ended attempt means', () => {
  // Every reason × whether the policy retries it × whether the task's budget (retry.max) is spent
  // × whether its platform allowance (retry.platform_max) is spent.
  type Row = [AttemptReason, 'listed' | 'not listed', 'budget left' | 'budget spent', 'allowance left' | 'allowance spent', string, string];
  const table: Row[] = [];
  for (const reason of ATTEMPT_REASONS as ReadonlySet<AttemptReason>) {
    for (const listed of ['listed', 'not listed'] as const) {
      for (const budget of ['budget left', 'budget spent'] as const) {
        for (const allowance of ['allowance left', 'allowance spent'] as const) {
          const platform = reason === 'lost' || reason === 'infra';
          const expected =
            reason === 'ok'
              ? 'succeeded'
              : reason === 'cancelled'
                ? 'cancelled'
                : platform && allowance === 'allowance left'
                  ? 'pending'
                  : listed === 'not listed' || budget === 'budget spent'
                    ? 'failed'
                    : 'pending';
          const paidBy = platform && allowance === 'allowance left' ? 'the platform' : 'the task';
          table.push([reason, listed, budget, allowance, expected, paidBy]);
        }
      }
    }
  }

  it.each(table)('%s, %s in retry.on, %s, platform %s → %s, paid by %s', (reason, listed, budget, allowance, expected, paidBy) => {
    const on = listed === 'listed' ? (['oom', 'timeout', 'lost', 'exit', 'infra'] as RetryPolicy['on']) : [];
    const task = { attempts: budget === 'budget left' ? 2 : 3, platformFailures: allowance === 'allowance left' ? 1 : 2 };
    const change = decideAttempt(ended(reason, task), rules({ on, max: 2, platformMax: 2 }));
    expect(change.task.state).toBe(expected);
    // A retry the platform pays for is not charged to the task's budget, and counts against the allowance.
    const platformPaid = paidBy === 'the platform';
    expect(change.task.retryBase).toBe(platformPaid ? 1 : 0);
    expect(change.task.platformFailures).toBe(task.platformFailures + (platformPaid ? 1 : 0));
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

  it('retries lost and infra attempts without spending retry.max, so a job with no retry block rides out a vanished worker', () => {
    for (const reason of ['lost', 'infra'] as const) {
      expect(decideAttempt(ended(reason), rules({ max: 0, on: [] })).task).toMatchObject({
        state: 'pending',
        memory: 1 * GB,
        timeMs: 60_000,
        retryBase: 1,
        platformFailures: 1,
      });
    }
  });

  it('ends a task that kills every worker it lands on: after retry.platform_max free retries, then its own budget if retry.on lists lost', () => {
    const endings = (retry: Partial<RetryPolicy>): string[] => {
      const task = { attempts: 1, retryBase: 0, platformFailures: 0 };
      const states: string[] = [];
      for (let guard = 0; guard < 50; guard++) {
        const { state, retryBase, platformFailures } = decideAttempt(ended('lost', task), rules(retry)).task;
        states.push(state);
        if (state !== 'pending') break;
        Object.assign(task, { attempts: task.attempts + 1, retryBase, platformFailures });
      }
      return states;
    };
    expect(endings({ max: 0, platformMax: 3 })).toEqual(['pending', 'pending', 'pending', 'failed']);
    expect(endings({ max: 2, on: ['lost'], platformMax: 1 })).toEqual(['pending', 'pending', 'pending', 'failed']);
    expect(endings({ max: 2, on: ['oom'], platformMax: 0 })).toEqual(['failed']);
  });

  it('does not count attempts handed back, never started or orphaned by a dead coordinator against the platform allowance', () => {
    const spent = { attempts: 9, platformFailures: 3 };
    const neverStarted = ended('lost', spent);
    neverStarted.result = { ...neverStarted.result, notStarted: true };
    for (const attempt of [ended('lost', { ...spent, interruption: 'handed-back' }), ended('lost', { ...spent, interruption: 'supervisor-lost' }), neverStarted]) {
      expect(decideAttempt(attempt, rules({ max: 0, on: [], platformMax: 3 })).task).toMatchObject({ state: 'pending', retryBase: 1, platformFailures: 3 });
    }
  });

  it('fills the platform allowance of a run recorded before retry.platform_max existed', () => {
    const spec = { retry: { max: 0, on: ['oom'], escalate: { memory: 1, time: 1 } }, outdir: '/out' } as unknown as RunRecord['spec'];
    const old = rulesOf({ id: 1, spec }, { stopping: false, memoryCeiling: GB });
    expect(old.retry.platformMax).toBe(3);
    expect(decideAttempt(ended('lost'), old).task.state).toBe('pending');
  });

  it('retries nothing once the run is stopping: what would be retried is cancelled', () => {
    const stopping = rules({}, { stopping: true });
    expect(decideAttempt(ended('oom'), stopping).task.state).toBe('cancelled');
    expect(decideAttempt(ended('lost', { interruption: 'handed-back' }), stopping).task).toMatchObject({ state: 'cancelled', retryBase: 1 });
    expect(decideAttempt(ended('exit', { attempts: 3 }), stopping).task.state).toBe('failed');
    expect(decideAttempt(ended('ok'), stopping).task.state).toBe('succeeded');
  });
});
