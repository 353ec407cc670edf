import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** A process, told apart from a later one that reused its pid: which coordinator drives a run, which launcher supervises its attempts. */
export interface ProcessIdentity {
  pid: number;
  host: string;
  /** Distinguishes a live process from a later one that reused its pid. */
  startedAt: string | null;
}

let bootId: string | undefined;

/** When a process started, in a form that differs for a later process that reuses its pid. */
function startMark(pid: number): string | null {
  try {
    bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return `${bootId}:${fields[19]}`;
  } catch {
    return null;
  }
}

export function identityOf(pid: number): ProcessIdentity {
  return { pid, host: hostname(), startedAt: startMark(pid) };
}

export function currentProcess(): ProcessIdentity {
  return identityOf(process.pid);
}

/**
 * Whether the process is still running. A process on another host cannot be checked from here,
 * so it counts as alive: refusing is safer than running the same task twice.
 */
export function isAlive(identity: ProcessIdentity): boolean {
  if (identity.host !== hostname()) return true;
  try {
    process.kill(identity.pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (identity.startedAt === null) return true;
  const mark = startMark(identity.pid);
  return mark === null || mark === identity.startedAt;
}
