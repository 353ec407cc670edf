import { formatBytes } from '../job/units.js';
import type { AttemptSpan } from '../store/records.js';

/**
 * What the dashboard's plots draw, summarised here so a run of 100,000 tasks sends a few
 * hundred numbers, not 100,000 rows: tasks done and attempts running over time, a histogram of
 * the durations of attempts that succeeded, and requested vs peak memory (a sample of points,
 * and the medians in a sentence when tasks asked for far more than they used).
 */
export interface RunPlots {
  timeline: Array<{ at: number; done: number; running: number }>;
  durations: Array<{ fromMs: number; toMs: number; count: number }>;
  memory: {
    points: Array<{ requested: number; peak: number }>;
    medianRequested: number | null;
    medianPeak: number | null;
    /** "median task used 0.6 GB of 4.3 GB", when the median request is at least twice the median peak. */
    overAsked: string | null;
    /** Peaks of attempts that asked for no memory (a sample), which have no point on the requested axis. */
    unrequestedPeaks: number[];
    /** What the plot says when there is no request to compare with. */
    note: string | null;
  };
}

const TIMELINE_POINTS = 120;
const DURATION_BINS = 20;
const MEMORY_POINTS = 1000;
/** A request this many times the use is worth saying out loud. */
const OVER_ASKED_FACTOR = 2;

/**
 * Plots of each run, computed again only when its status changed, and for a run still going at
 * most every few seconds: at 100,000 attempts reading them takes a few hundred ms, which every
 * other request of the server would wait for.
 */
export class PlotCache {
  private readonly cached = new Map<number, { key: string; at: number; plots: RunPlots }>();

  constructor(private readonly minAgeMs = 5000) {}

  async get(runId: number, statusKey: string, running: boolean, spans: () => Promise<AttemptSpan[]>): Promise<RunPlots> {
    const entry = this.cached.get(runId);
    const now = Date.now();
    if (entry && (entry.key === statusKey || (running && now - entry.at < this.minAgeMs))) return entry.plots;
    const plots = runPlots(await spans(), now);
    this.cached.set(runId, { key: statusKey, at: now, plots });
    return plots;
  }
}

export function runPlots(spans: AttemptSpan[], now: number): RunPlots {
  return { timeline: timeline(spans, now), durations: durations(spans), memory: memory(spans) };
}

function timeline(spans: AttemptSpan[], now: number): RunPlots['timeline'] {
  if (spans.length === 0) return [];
  const starts = sortedNumbers(spans.map((s) => s.startedAt ?? s.launchedAt));
  const ends = sortedNumbers(spans.filter((s) => s.endedAt !== null).map((s) => s.endedAt!));
  const doneAt = sortedNumbers(spans.filter((s) => s.reason === 'ok' && s.endedAt !== null).map((s) => s.endedAt!));
  const first = starts[0]!;
  const running = spans.some((s) => s.endedAt === null);
  const last = Math.max(running ? now : first, ends.at(-1) ?? first, first + 1);
  // One sweep over each sorted list: counts at each sample time.
  const points: RunPlots['timeline'] = [];
  let started = 0;
  let ended = 0;
  let done = 0;
  for (let i = 0; i <= TIMELINE_POINTS; i++) {
    const at = first + ((last - first) * i) / TIMELINE_POINTS;
    while (started < starts.length && starts[started]! <= at) started++;
    while (ended < ends.length && ends[ended]! <= at) ended++;
    while (done < doneAt.length && doneAt[done]! <= at) done++;
    points.push({ at: Math.round(at), done, running: Math.max(0, started - ended) });
  }
  return points;
}

function durations(spans: AttemptSpan[]): RunPlots['durations'] {
  const values = spans.filter((s) => s.reason === 'ok' && s.startedAt !== null && s.endedAt !== null).map((s) => s.endedAt! - s.startedAt!);
  if (values.length === 0) return [];
  let min = Infinity;
  let max = -Infinity;
  for (const value of values) {
    min = Math.min(min, value);
    max = Math.max(max, value);
  }
  const width = Math.max(1, Math.ceil((max - min + 1) / DURATION_BINS));
  const bins = Array.from({ length: DURATION_BINS }, (_, i) => ({ fromMs: min + i * width, toMs: min + (i + 1) * width, count: 0 }));
  for (const value of values) bins[Math.min(DURATION_BINS - 1, Math.floor((value - min) / width))]!.count++;
  while (bins.length > 1 && bins.at(-1)!.count === 0) bins.pop();
  return bins;
}

function memory(spans: AttemptSpan[]): RunPlots['memory'] {
  const measured = spans.filter((s) => s.peakMemory !== null && s.memory !== null && s.endedAt !== null);
  const stride = Math.max(1, Math.ceil(measured.length / MEMORY_POINTS));
  const points = measured.filter((_, i) => i % stride === 0).map((s) => ({ requested: s.memory!, peak: s.peakMemory! }));
  const medianRequested = median(measured.map((s) => s.memory!));
  const medianPeak = median(measured.map((s) => s.peakMemory!));
  const overAsked =
    medianRequested !== null && medianPeak !== null && medianRequested >= OVER_ASKED_FACTOR * medianPeak
      ? `median task used ${formatBytes(medianPeak)} of ${formatBytes(medianRequested)}`
      : null;
  const unrequested = spans.filter((s) => s.peakMemory !== null && s.memory === null && s.endedAt !== null).map((s) => s.peakMemory!);
  const unrequestedStride = Math.max(1, Math.ceil(unrequested.length / MEMORY_POINTS));
  const unrequestedMedian = median(unrequested);
  const note = measured.length === 0 && unrequestedMedian !== null ? `tasks asked for no memory; the median peak was ${formatBytes(unrequestedMedian)}` : null;
  return { points, medianRequested, medianPeak, overAsked, unrequestedPeaks: unrequested.filter((_, i) => i % unrequestedStride === 0), note };
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = sortedNumbers(values);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** Numbers in ascending order; a typed array sorts numerically and fast (100,000 values). */
function sortedNumbers(values: number[]): Float64Array {
  return Float64Array.from(values).sort();
}
