import type { ClaimRequest } from './work-queue.js';

/**
 * Which pending work a worker's claim takes, the same in every store: the store reads the
 * candidates in queue order (queued gathers first, then pending tasks of the oldest run first,
 * each small enough to fit the worker alone), and takes, first fit, those that fit together.
 */

/** A pending task, or a run's queued gather, with the attempt it would start. */
export type ClaimCandidate =
  | { kind: 'task'; runId: number; index: number; attempt: number; cpus: number; memory: number | null }
  | { kind: 'gather'; runId: number; attempt: number; cpus: number; memory: null };

/** The gather runs on one cpu; its memory is not known ahead. */
export const GATHER_CPUS = 1;

/**
 * How many pending tasks a claim reads (and, in PostgreSQL, locks): a few more than it can take,
 * so a task that does not fit beside the others does not leave the worker idle, yet few enough
 * that a long queue is never scanned whole.
 */
export function candidateWindow(request: Pick<ClaimRequest, 'cpus' | 'limit'>): number {
  return 2 * Math.max(1, Math.floor(Math.min(request.limit, request.cpus)));
}

/** The most one task may ask for (the worker's size), which may be less than what the claim takes in all. */
export function perTaskLimit(request: Pick<ClaimRequest, 'cpus' | 'memory' | 'perTask'>): { cpus: number; memory: number } {
  return { cpus: Math.min(request.perTask?.cpus ?? request.cpus, request.cpus), memory: Math.min(request.perTask?.memory ?? request.memory, request.memory) };
}

/** Whether the worker can take anything at all. */
export function canClaim(request: Pick<ClaimRequest, 'cpus' | 'memory' | 'limit'>): boolean {
  return request.limit >= 1 && request.cpus >= 1 && request.memory >= 0;
}

/** First fit in queue order: each candidate taken while the cpus, memory and count left allow it. */
export function pickFitting<T extends ClaimCandidate>(candidates: T[], request: Pick<ClaimRequest, 'cpus' | 'memory' | 'limit'>): T[] {
  const taken: T[] = [];
  let cpus = request.cpus;
  let memory = request.memory;
  for (const candidate of candidates) {
    if (taken.length >= request.limit) break;
    const needs = candidate.memory ?? 0;
    if (candidate.cpus > cpus || needs > memory) continue;
    taken.push(candidate);
    cpus -= candidate.cpus;
    memory -= needs;
  }
  return taken;
}
