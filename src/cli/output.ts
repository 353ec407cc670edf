import { formatBytes, formatDuration } from '../spec/units.js';
import type { RunRecord, TaskCounts, TaskRecord } from '../store/store.js';

/** The `status --json` shape other tools and the dashboard rely on. */
export interface StatusJson {
  run: number;
  job: string;
  /** local, slurm or sge. */
  backend: string;
  state: RunRecord['state'];
  counts: TaskCounts;
  total: number;
  gather: RunRecord['gatherState'];
  createdAt: string;
  endedAt: string | null;
  outdir: string;
}

export function statusJson(run: RunRecord, counts: TaskCounts): StatusJson {
  return {
    run: run.id,
    job: run.job,
    backend: run.backend,
    state: run.state,
    counts,
    total: Object.values(counts).reduce((a, b) => a + b, 0),
    gather: run.gatherState,
    createdAt: new Date(run.createdAt).toISOString(),
    endedAt: run.endedAt === null ? null : new Date(run.endedAt).toISOString(),
    outdir: run.spec.outdir,
  };
}

/** The `tasks --json` row shape. */
export interface TaskJson {
  index: number;
  name: string;
  state: TaskRecord['state'];
  attempts: number;
  reason: TaskRecord['reason'];
  exitCode: number | null;
  /** Bytes asked for by the last attempt. */
  memory: number | null;
  peakMemory: number | null;
  durationMs: number | null;
}

export function taskJson(task: TaskRecord): TaskJson {
  return {
    index: task.index,
    name: task.name,
    state: task.state,
    attempts: task.attempts,
    reason: task.reason,
    exitCode: task.exitCode,
    memory: task.memory,
    peakMemory: task.peakMemory,
    durationMs: task.durationMs,
  };
}

/** Left-aligned columns; a task name with a newline or tab is shown escaped so rows stay rows. */
export function table(header: string[], rows: string[][]): string {
  const cells = [header, ...rows].map((row) => row.map(printable));
  const widths = header.map((_, column) => Math.max(...cells.map((row) => row[column]!.length)));
  return cells.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

export function printable(text: string): string {
  return /[\x00-\x1f\x7f]/.test(text) ? JSON.stringify(text).slice(1, -1) : text;
}

export function countsLine(counts: TaskCounts): string {
  const parts = (Object.keys(counts) as Array<keyof TaskCounts>).filter((state) => counts[state] > 0).map((state) => `${counts[state]} ${state}`);
  return parts.length ? parts.join(', ') : 'no tasks';
}

export const orDash = (value: string | number | null | undefined): string => (value === null || value === undefined ? '-' : String(value));
export const bytesOrDash = (value: number | null): string => (value === null ? '-' : formatBytes(value));
export const durationOrDash = (value: number | null): string => (value === null ? '-' : formatDuration(value));
