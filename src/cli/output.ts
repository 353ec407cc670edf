import { formatBytes, formatDuration } from '../job/units.js';
import type { TaskCounts } from '../store/records.js';

/** Left-aligned columns; a task name with a newline or tab is shown escaped so rows stay rows. */
export function table(header: string[], rows: string[][]): string {
  const cells = [header, ...rows].map((row) => row.map(printable));
  const widths = header.map((_, column) => Math.max(...cells.map((row) => row[column]!.length)));
  return cells
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what it looks for
  return /[\x00-\x1f\x7f]/.test(text) ? JSON.stringify(text).slice(1, -1) : text;
}

export function countsLine(counts: TaskCounts): string {
  const parts = (Object.keys(counts) as Array<keyof TaskCounts>).filter((state) => counts[state] > 0).map((state) => `${counts[state]} ${state}`);
  return parts.length ? parts.join(', ') : 'no tasks';
}

export const orDash = (value: string | number | null | undefined): string => (value === null || value === undefined ? '-' : String(value));
export const bytesOrDash = (value: number | null): string => (value === null ? '-' : formatBytes(value));
export const durationOrDash = (value: number | null): string => (value === null ? '-' : formatDuration(value));
