import { hostname } from 'node:os';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ATTEMPT_REASONS, type AttemptReason } from '../job/job-spec.js';
import type { AttemptResult } from './launcher.js';

/**
 * The files the launcher leaves in every attempt folder. The result record is what survives the
 * coordinator: a restarted coordinator adopts an attempt by reading it.
 */

// native/launcher.c spells them again; launcher.test.ts reads its files by these names, so they cannot part.
export const STDOUT_FILE = '.fanout.out';
export const STDERR_FILE = '.fanout.err';
export const RESULT_FILE = '.fanout.result.json';
/**
 * Written by a container's last step (src/container/container-command.ts): its memory cgroup's
 * peak and oom-kill count, which the runner outside cannot see. The launcher and the cluster
 * element runner read it: a failed attempt whose container had an oom kill is `oom`, and the
 * peak is the container's.
 */
export const CONTAINER_LIMITS_FILE = '.fanout.container';

/** The record on disk: an AttemptResult plus who it was. */
export interface ResultRecord extends AttemptResult {
  id: number;
  /** The task's process (and process group) id; null when it never started. */
  pid: number | null;
}

/**
 * The attempt's result, or null while it has none. The launcher writes a temp file and renames
 * it, so a file that does not parse was not written by it and counts as absent. (On a folder
 * only; src/storage/attempt-files.ts reads it from any workdir.)
 */
export function readResultRecord(attemptDir: string): ResultRecord | null {
  let text: string;
  try {
    text = readFileSync(join(attemptDir, RESULT_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw error;
  }
  return parseResultRecord(text);
}

/** A result record's text as the launcher wrote it; null when it is not one (so counts as absent). */
export function parseResultRecord(text: string): ResultRecord | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  return parseRecord(raw);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

function parseRecord(raw: unknown): ResultRecord | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  if (!isInt(r.id) || typeof r.reason !== 'string' || !ATTEMPT_REASONS.has(r.reason)) return null;
  if (!(r.exitCode === null || isInt(r.exitCode))) return null;
  if (!(r.signal === null || typeof r.signal === 'string')) return null;
  if (!isInt(r.startedAt) || !isInt(r.endedAt) || !(r.peakMemory === null || isInt(r.peakMemory)) || !isInt(r.cpuMs)) return null;
  if (typeof r.host !== 'string') return null;
  if (!(r.pid === null || r.pid === undefined || isInt(r.pid))) return null;
  const record: ResultRecord = {
    id: r.id,
    reason: r.reason as AttemptReason,
    exitCode: r.exitCode,
    signal: r.signal,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    peakMemory: r.peakMemory,
    cpuMs: r.cpuMs,
    host: r.host,
    pid: r.pid ?? null,
  };
  if (typeof r.error === 'string') record.error = r.error;
  return record;
}

/**
 * Replace an attempt's record with the result decided for it (a cluster backend learns from the
 * scheduler that a SIGKILL or a failed allocation was the memory limit), so the record on disk
 * says what the store says. Temp file, then rename, as the launcher does.
 */
export function rewriteResultRecord(attemptDir: string, record: ResultRecord): void {
  const path = join(attemptDir, RESULT_FILE);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(record)}\n`);
  renameSync(`${path}.tmp`, path);
}

/**
 * The result of an attempt that vanished without a record (its supervisor or its array element
 * is gone). `notStarted`: its command never ran, so a retry does not count against the task.
 */
export function lostResult(error: string, options: { notStarted?: boolean } = {}): AttemptResult {
  const now = Date.now();
  const result: AttemptResult = { reason: 'lost', exitCode: null, signal: null, startedAt: now, endedAt: now, peakMemory: null, cpuMs: 0, host: hostname(), error };
  if (options.notStarted) result.notStarted = true;
  return result;
}
