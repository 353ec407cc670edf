import { closeSync, openSync, readSync, statfsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { formatBytes } from '../job/units.js';
import type { AttemptResult } from '../runner/launcher.js';
import { STDERR_FILE } from '../runner/result-record.js';
import { isObjectStoreUri } from '../storage/location.js';

/** Below this much free space, a disk counts as full: a write that failed there failed for want of room. */
const FULL_BELOW_BYTES = 1 << 20;

/** What programs print when a write fails for want of room (ENOSPC, EDQUOT). */
const NO_SPACE = /No space left on device|Disk quota exceeded|ENOSPC|EDQUOT/;

/** How much of the end of an attempt's stderr is searched for NO_SPACE. */
const STDERR_TAIL_BYTES = 64 * 1024;

/**
 * A failed attempt's result, its reason text saying so when a disk it wrote to is full: the
 * disk of its output staging or its own folder has (almost) no room left, or its stderr says
 * "No space left on device". The exit code alone reads as the task's own fault.
 */
export function withDiskFullNote(result: AttemptResult, places: { attemptDir: string; stagingOut?: string }): AttemptResult {
  if (result.reason !== 'exit' && result.reason !== 'infra') return result;
  const note = fullDiskNote([places.stagingOut, places.attemptDir]) ?? stderrNote(places.attemptDir);
  if (note === undefined) return result;
  return { ...result, error: result.error ? `${result.error}; ${note}` : note };
}

function fullDiskNote(paths: Array<string | undefined>): string | undefined {
  for (const path of paths) {
    if (path === undefined || isObjectStoreUri(path)) continue;
    const free = freeBytes(path);
    if (free !== undefined && free < FULL_BELOW_BYTES) return `the disk holding ${path} is full (${formatBytes(free)} free)`;
  }
  return undefined;
}

/** Free bytes for an unprivileged user on the filesystem of `path` (or of its nearest existing folder). */
function freeBytes(path: string): number | undefined {
  for (let at = path; ; at = dirname(at)) {
    try {
      const stats = statfsSync(at);
      return stats.bavail * stats.bsize;
    } catch {
      if (dirname(at) === at) return undefined;
    }
  }
}

function stderrNote(attemptDir: string): string | undefined {
  if (isObjectStoreUri(attemptDir)) return undefined;
  const file = join(attemptDir, STDERR_FILE);
  try {
    const size = statSync(file).size;
    const length = Math.min(size, STDERR_TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buffer, 0, length, size - length);
    } finally {
      closeSync(fd);
    }
    const match = NO_SPACE.exec(buffer.toString('utf8'));
    return match ? `a disk is full: its stderr says "${match[0]}"` : undefined;
  } catch {
    return undefined;
  }
}
