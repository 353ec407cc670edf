import { describe, expect, it } from 'vitest';
import type { AttemptSpan } from '../store/records.js';
import { runPlots } from './run-plots.js';

const GB = 1e9;

function span(startedAt: number, endedAt: number | null, extra: Partial<AttemptSpan> = {}): AttemptSpan {
  return {
    index: 0,
    launchedAt: startedAt,
    startedAt,
    endedAt,
    reason: endedAt === null ? null : 'ok',
    memory: 4 * GB,
    peakMemory: endedAt === null ? null : 0.6 * GB,
    ...extra,
  };
}

describe('run plots', () => {
  it('counts tasks done and attempts running over time', () => {
    const plots = runPlots([span(0, 100), span(0, 200), span(50, 300, { reason: 'exit' }), span(250, null)], 400);
    const at = (t: number) => plots.timeline.find((p) => p.at >= t)!;
    expect(plots.timeline[0]).toEqual({ at: 0, done: 0, running: 2 });
    expect(at(60)).toMatchObject({ done: 0, running: 3 });
    expect(at(210)).toMatchObject({ done: 2, running: 1 });
    expect(at(260)).toMatchObject({ done: 2, running: 2 });
    expect(plots.timeline.at(-1)).toEqual({ at: 400, done: 2, running: 1 });
  });

  it('bins the durations of attempts that succeeded', () => {
    const spans = [...Array.from({ length: 9 }, (_, i) => span(0, 100 + i)), span(0, 2000), span(0, 5000, { reason: 'exit' })];
    const bins = runPlots(spans, 0).durations;
    expect(bins[0]).toMatchObject({ fromMs: 100, count: 9 });
    expect(bins.at(-1)).toMatchObject({ count: 1 });
    expect(bins.at(-1)!.toMs).toBeGreaterThan(2000);
    expect(bins.reduce((sum, bin) => sum + bin.count, 0)).toBe(10);
  });

  it('says when the median task asked for far more memory than it used, and not otherwise', () => {
    const asked = runPlots([span(0, 1), span(0, 2, { peakMemory: 0.5 * GB }), span(0, 3, { peakMemory: 3 * GB }), span(0, null)], 10).memory;
    expect(asked.overAsked).toBe('median task used 600 MB of 4.0 GB');
    expect(asked.points).toHaveLength(3);
    const fitting = runPlots([span(0, 1, { peakMemory: 3 * GB })], 10).memory;
    expect(fitting.overAsked).toBeNull();
    const unasked = runPlots([span(0, 1, { memory: null, peakMemory: 2e6 })], 10).memory;
    expect(unasked).toMatchObject({ overAsked: null, points: [], unrequestedPeaks: [2e6], note: 'tasks asked for no memory; the median peak was 2.0 MB' });
  });
});
