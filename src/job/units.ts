/**
 * Memory and time with units, as users write them in job files and on the command line.
 * Decimal units (KB, MB, GB, TB) are powers of 1000; binary ones (KiB..TiB, and the
 * scheduler-style K, M, G, T) are powers of 1024, as SLURM reads them.
 */

/** Binary units, the one place they are spelled out. */
const KIB = 1024;
export const MIB = 1024 ** 2;
export const GIB = 1024 ** 3;

/** Bytes as whole mebibytes, rounded up: what schedulers are asked for (`--mem=…M`, `h_vmem=…M`). */
export function ceilMebibytes(bytes: number): number {
  return Math.ceil(bytes / MIB);
}

const MEMORY_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  k: KIB,
  m: MIB,
  g: GIB,
  t: 1024 * GIB,
  kib: KIB,
  mib: MIB,
  gib: GIB,
  tib: 1024 * GIB,
};

const TIME_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Bytes per `unit` (any case), or undefined when it is not a size unit. */
export function memoryUnitFactor(unit: string): number | undefined {
  return MEMORY_UNITS[unit.toLowerCase()];
}

/** Milliseconds per `unit` (any case), or undefined when it is not a time unit. */
export function timeUnitFactor(unit: string): number | undefined {
  return TIME_UNITS[unit.toLowerCase()];
}

/** `"512MB"` → 512000000. Returns null when the text is not a size with a unit. */
export function parseMemory(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$/.exec(text);
  if (!match) return null;
  const factor = memoryUnitFactor(match[2]!);
  if (factor === undefined) return null;
  const bytes = Math.round(Number(match[1]) * factor);
  return bytes > 0 ? bytes : null;
}

/** `"90s"`, `"2h"`, `"1h30m"`, `"01:30:00"` → milliseconds. Null when not a duration. */
export function parseDuration(text: string): number | null {
  const clock = /^\s*(?:(\d+)-)?(\d+):(\d{1,2}):(\d{1,2})\s*$/.exec(text);
  if (clock) {
    const [, days, hours, minutes, seconds] = clock;
    const ms = ((Number(days ?? 0) * 24 + Number(hours)) * 60 + Number(minutes)) * 60_000 + Number(seconds) * 1000;
    return ms > 0 ? ms : null;
  }
  const compact = text.replace(/\s+/g, '');
  if (!/^(\d+(?:\.\d+)?[a-zA-Z]+)+$/.test(compact)) return null;
  let total = 0;
  for (const part of compact.matchAll(/(\d+(?:\.\d+)?)([a-zA-Z]+)/g)) {
    const factor = timeUnitFactor(part[2]!);
    if (factor === undefined) return null;
    total += Number(part[1]) * factor;
  }
  return total > 0 ? Math.round(total) : null;
}

/** 1.5e9 → "1.5 GB": for messages and tables. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** 5400000 → "1h30m": for messages and tables. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  const totalSeconds = Math.round(ms / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  return `${m}m${String(s).padStart(2, '0')}s`;
}
