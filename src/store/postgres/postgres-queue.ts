import type { JobSpec } from '../../job/job-spec.js';
import { candidateWindow, canClaim, GATHER_CPUS, perTaskLimit, pickFitting, type ClaimCandidate } from '../claim-plan.js';
import type { AttemptRecord, GatherAttemptRecord, NewWorker, WorkerRecord } from '../records.js';
import {
  nullableNumber,
  parseStoredSpec,
  toAttempt,
  toGatherAttempt,
  toTask,
  toWorker,
  type AttemptRow,
  type DbNumber,
  type GatherRow,
  type RunRow,
  type TaskRow,
  type WorkerHoldingRow,
} from '../rows.js';
import type { AttemptKey, ClaimedAttempt, ClaimRequest, WorkQueue } from '../work-queue.js';
import { NOW_MS, statement, type PostgresConnection } from './postgres-connection.js';

/**
 * The work queue of pull dispatch in PostgreSQL, shared by workers on many machines. A claim
 * locks the pending tasks (and queued gathers' runs) it reads with SKIP LOCKED so concurrent
 * workers pass each other by; leases are measured by the server's clock, so machines whose
 * clocks disagree still agree on when a lease runs out.
 */
export class PostgresQueue implements WorkQueue {
  /** Run specs never change; a claim needs them for every attempt's folder. */
  private readonly specs = new Map<number, JobSpec>();

  constructor(private readonly db: PostgresConnection) {}

  async registerWorker(worker: NewWorker): Promise<void> {
    await this.db.query(SQL.registerWorker, [worker.id, worker.host, worker.pid, worker.cpus, worker.memory, worker.launchedBy]);
  }

  async listWorkers(options: { all?: boolean } = {}): Promise<WorkerRecord[]> {
    return (await this.db.query(SQL.listWorkers, [options.all === true])).map(toWorker);
  }

  async retireWorker(workerId: string): Promise<void> {
    await this.db.query(SQL.retireWorker, [workerId]);
  }

  async claim(request: ClaimRequest): Promise<ClaimedAttempt[]> {
    if (!canClaim(request)) return [];
    const perTask = perTaskLimit(request);
    return this.db.transaction(async (query) => {
      const candidates = (await query(SQL.claimCandidates, [perTask.cpus, perTask.memory, Math.floor(request.limit), candidateWindow(request)])).map(
        (row): ClaimCandidate =>
          row.kind === 'gather'
            ? { kind: 'gather', runId: Number(row.run_id), attempt: Number(row.attempts) + 1, cpus: GATHER_CPUS, memory: null }
            : {
                kind: 'task',
                runId: Number(row.run_id),
                index: Number(row.idx),
                attempt: Number(row.attempts) + 1,
                cpus: Number(row.cpus),
                memory: nullableNumber(row.memory),
              },
      );
      const chosen = pickFitting(candidates, request);
      if (chosen.length === 0) return [];
      const unknownSpecs = [...new Set(chosen.map((c) => c.runId))].filter((runId) => !this.specs.has(runId));
      if (unknownSpecs.length > 0) {
        for (const row of await query(SQL.specs, [unknownSpecs])) this.specs.set(Number(row.id), parseStoredSpec(row.spec));
      }
      const dirs = chosen.map((c) => {
        const run = { id: c.runId, spec: this.specs.get(c.runId)! };
        return c.kind === 'gather' ? request.folders.gatherDir(run, c.attempt) : request.folders.attemptDir(run, c.index, c.attempt);
      });
      const claimedTasks = await query(SQL.claim, [
        chosen.map((c) => c.kind),
        chosen.map((c) => c.runId),
        chosen.map((c) => (c.kind === 'task' ? c.index : null)),
        chosen.map((c) => c.attempt),
        dirs,
        request.workerId,
        request.leaseMs,
      ]);
      const tasks = new Map(claimedTasks.map((row) => [`${row.run_id}:${row.idx}`, toTask(row)]));
      return chosen.map((c, i): ClaimedAttempt => {
        const dir = dirs[i]!;
        if (c.kind === 'gather') return { kind: 'gather', runId: c.runId, attempt: c.attempt, dir };
        return { kind: 'task', runId: c.runId, task: tasks.get(`${c.runId}:${c.index}`)!, attempt: c.attempt, dir };
      });
    });
  }

  async heartbeat(workerId: string, holding: AttemptKey[], leaseMs: number): Promise<AttemptKey[]> {
    const rows = await this.db.query(SQL.heartbeat, [
      workerId,
      holding.map((h) => h.kind),
      holding.map((h) => h.runId),
      holding.map((h) => (h.kind === 'task' ? h.index : null)),
      holding.map((h) => h.attempt),
      leaseMs,
    ]);
    // The keys the worker passed, those of them it must stop, in its order.
    return rows.map((row) => holding[Number(row.n) - 1]!);
  }

  async started(workerId: string, attempts: Array<Extract<AttemptKey, { kind: 'task' }>>): Promise<void> {
    if (attempts.length === 0) return;
    await this.db.query(SQL.started, [workerId, attempts.map((a) => a.runId), attempts.map((a) => a.index), attempts.map((a) => a.attempt)]);
  }

  async leasesOutstanding(): Promise<boolean> {
    const [row] = await this.db.query(SQL.leasesOutstanding, []);
    return row?.outstanding === true;
  }

  async workersLost(workerIds: string[]): Promise<void> {
    if (workerIds.length > 0) await this.db.query(SQL.workersLost, [workerIds]);
  }

  async expiredAttempts(limit: number): Promise<{ tasks: AttemptRecord[]; gathers: GatherAttemptRecord[] }> {
    const [tasks, gathers] = await Promise.all([this.db.query(SQL.expiredAttempts, [limit]), this.db.query(SQL.expiredGathers, [limit])]);
    return { tasks: tasks.map(toAttempt), gathers: gathers.map(toGatherAttempt) };
  }

  async settleRun(runId: number, options: { hasGather: boolean }): Promise<'gather-queued' | 'succeeded' | 'failed' | null> {
    // Most calls come while tasks are still out: one unlocked look says so without a transaction.
    const [look] = await this.db.query(SQL.settleLook, [runId]);
    if (!settleable(look)) return null;
    return this.db.transaction(async (query) => {
      // Lock the run first, then look again: what its tasks are now, after any settler before us.
      await query(SQL.lockRunToSettle, [runId]);
      const [run] = await query(SQL.runOutcome, [runId]);
      if (!run || !settleable(run)) return null;
      const gather = run.gather_state;
      const allSucceeded = run.unsuccessful === false;
      if (options.hasGather && allSucceeded && gather === null) {
        await query(SQL.queueGather, [runId]);
        return 'gather-queued';
      }
      const state = allSucceeded && gather !== 'failed' ? 'succeeded' : 'failed';
      await query(SQL.endRun, [runId, state]);
      return state;
    });
  }
}

type SettleRow = Pick<RunRow, 'state' | 'gather_state'> & { unfinished: boolean };

/** Whether a run (with whether any task is unfinished) can end or queue its gather. */
function settleable(run: SettleRow | undefined): boolean {
  return run !== undefined && run.state === 'running' && run.gather_state !== 'pending' && run.gather_state !== 'running' && run.unfinished === false;
}

type CandidateRow = { kind: 'task' | 'gather'; run_id: DbNumber; idx: number | null; cpus: number; memory: DbNumber | null; attempts: DbNumber };

const SQL = {
  specs: statement<Pick<RunRow, 'id' | 'spec'>>('specs', 'SELECT id, spec FROM runs WHERE id = ANY($1::bigint[])'),
  lockRunToSettle: statement('lock_run_to_settle', 'SELECT 1 FROM runs WHERE id = $1 FOR UPDATE'),
  queueGather: statement('queue_gather', `UPDATE runs SET gather_state = 'pending' WHERE id = $1`),
  endRun: statement('end_run', `UPDATE runs SET state = $2, ended_at = ${NOW_MS} WHERE id = $1`),
  settleLook: statement<SettleRow>(
    'settle_look',
    `
    SELECT state, gather_state,
      EXISTS (SELECT 1 FROM tasks WHERE run_id = $1 AND state IN ('pending', 'running')) AS unfinished
    FROM runs WHERE id = $1`,
  ),
  // EXISTS, not counts: a run is settled after each result, and may have 100,000 tasks.
  runOutcome: statement<SettleRow & { unsuccessful: boolean }>(
    'run_outcome',
    `
    SELECT state, gather_state,
      EXISTS (SELECT 1 FROM tasks WHERE run_id = $1 AND state IN ('pending', 'running')) AS unfinished,
      EXISTS (SELECT 1 FROM tasks WHERE run_id = $1 AND state IN ('failed', 'cancelled')) AS unsuccessful
    FROM runs WHERE id = $1`,
  ),

  registerWorker: statement(
    'register_worker',
    `
    INSERT INTO workers (id, host, pid, cpus, memory, launched_by, state, started_at, heartbeat_at)
    VALUES ($1, $2, $3, $4, $5, $6, 'running', ${NOW_MS}, ${NOW_MS})
    ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, cpus = excluded.cpus,
      memory = excluded.memory, launched_by = excluded.launched_by, state = 'running', heartbeat_at = excluded.heartbeat_at`,
  ),
  // What a worker holds: attempts of tasks and of gathers.
  listWorkers: statement<WorkerHoldingRow>(
    'list_workers',
    `
    SELECT w.*,
      (SELECT count(*) FROM attempts a WHERE a.worker = w.id AND a.state = 'running')
      + (SELECT count(*) FROM gathers g WHERE g.worker = w.id AND g.state = 'running') AS holding
    FROM workers w WHERE $1 OR w.state = 'running' ORDER BY w.started_at DESC, w.seq DESC`,
  ),
  // Anything it still claimed is lost with it: reapable now rather than when the lease runs out.
  retireWorker: statement(
    'retire_worker',
    `
    WITH retired AS (
      UPDATE workers SET state = 'stopped', heartbeat_at = ${NOW_MS} WHERE id = $1
    ), gathers_lost AS (
      UPDATE gathers SET lease_expires = ${NOW_MS} WHERE worker = $1 AND state = 'running'
    )
    UPDATE attempts SET lease_expires = ${NOW_MS} WHERE worker = $1 AND state = 'running'`,
  ),
  // A queued gather's run row is locked like a pending task, so a run's gather is claimed once
  // and never while one started by hand holds the row; one that runs already is not offered.
  claimCandidates: statement<CandidateRow>(
    'claim_candidates',
    `
    WITH queued AS (
      SELECT r.id FROM runs r
      WHERE r.state = 'running' AND r.dispatch = 'pull' AND r.gather_state = 'pending'
        AND NOT EXISTS (SELECT 1 FROM gathers g WHERE g.run_id = r.id AND g.state = 'running')
      ORDER BY r.id LIMIT $3
      FOR UPDATE SKIP LOCKED
    )
    SELECT 'gather'::text AS kind, q.id AS run_id, NULL::int AS idx, ${GATHER_CPUS} AS cpus, NULL::bigint AS memory, 0 AS queue,
      (SELECT coalesce(max(g.attempt), 0) FROM gathers g WHERE g.run_id = q.id) AS attempts
    FROM queued q
    UNION ALL (
      SELECT 'task'::text AS kind, t.run_id, t.idx, t.cpus, t.memory, 1 AS queue, t.attempts
      FROM runs r CROSS JOIN LATERAL (
        SELECT t.run_id, t.idx, t.cpus, t.memory, t.attempts FROM tasks t
        WHERE t.run_id = r.id AND t.state = 'pending' AND t.cpus <= $1::float8 AND coalesce(t.memory, 0) <= $2::float8
        ORDER BY t.idx LIMIT $4
        FOR UPDATE SKIP LOCKED
      ) t
      WHERE r.state = 'running' AND r.dispatch = 'pull'
      ORDER BY r.id, t.idx LIMIT $4
    )
    ORDER BY queue, run_id, idx`,
  ),
  claim: statement<TaskRow>(
    'claim',
    `
    WITH c AS (
      SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::int[], $5::text[]) AS c(kind, run_id, idx, attempt, dir)
    ), claimed AS (
      UPDATE tasks t SET state = 'running', attempts = c.attempt FROM c
      WHERE c.kind = 'task' AND t.run_id = c.run_id AND t.idx = c.idx
      RETURNING t.*
    ), launched AS (
      INSERT INTO attempts (run_id, idx, attempt, state, dir, memory, time_ms, launched_at, worker, lease_expires)
      SELECT c.run_id, c.idx, c.attempt, 'running', c.dir, t.memory, t.time_ms, ${NOW_MS}, $6, ${NOW_MS} + $7::bigint
      FROM c JOIN tasks t ON t.run_id = c.run_id AND t.idx = c.idx
      WHERE c.kind = 'task'
    ), gathering AS (
      UPDATE runs r SET gather_state = 'running' FROM c WHERE c.kind = 'gather' AND r.id = c.run_id
    ), gathered AS (
      INSERT INTO gathers (run_id, attempt, state, dir, launched_at, worker, lease_expires)
      SELECT c.run_id, c.attempt, 'running', c.dir, ${NOW_MS}, $6, ${NOW_MS} + $7::bigint
      FROM c WHERE c.kind = 'gather'
    )
    SELECT * FROM claimed`,
  ),
  // Gives the positions (from 1) of the held attempts the worker must stop.
  heartbeat: statement<{ n: DbNumber }>(
    'heartbeat',
    `
    WITH held AS (
      SELECT * FROM unnest($2::text[], $3::bigint[], $4::int[], $5::int[]) WITH ORDINALITY AS h(kind, run_id, idx, attempt, n)
    ), beat AS (
      UPDATE workers SET heartbeat_at = ${NOW_MS}, state = CASE state WHEN 'lost' THEN 'running' ELSE state END WHERE id = $1
    ), extended_tasks AS (
      UPDATE attempts a SET lease_expires = ${NOW_MS} + $6::bigint FROM held h
      WHERE h.kind = 'task' AND a.run_id = h.run_id AND a.idx = h.idx AND a.attempt = h.attempt AND a.state = 'running' AND a.worker = $1
      RETURNING 'task'::text AS kind, a.run_id, a.idx, a.attempt
    ), extended_gathers AS (
      UPDATE gathers g SET lease_expires = ${NOW_MS} + $6::bigint FROM held h
      WHERE h.kind = 'gather' AND g.run_id = h.run_id AND g.attempt = h.attempt AND g.state = 'running' AND g.worker = $1
      RETURNING 'gather'::text AS kind, g.run_id, NULL::int AS idx, g.attempt
    ), extended AS (
      SELECT * FROM extended_tasks UNION ALL SELECT * FROM extended_gathers
    )
    SELECT h.n FROM held h
    WHERE NOT EXISTS (
      SELECT 1 FROM extended e JOIN runs r ON r.id = e.run_id
      WHERE e.kind = h.kind AND e.run_id = h.run_id AND e.idx IS NOT DISTINCT FROM h.idx AND e.attempt = h.attempt AND r.state = 'running'
    )
    ORDER BY h.n`,
  ),
  started: statement(
    'started',
    `
    UPDATE attempts a SET started_at = ${NOW_MS}
    FROM unnest($2::bigint[], $3::int[], $4::int[]) AS s(run_id, idx, attempt)
    WHERE a.run_id = s.run_id AND a.idx = s.idx AND a.attempt = s.attempt AND a.state = 'running' AND a.worker = $1`,
  ),
  leasesOutstanding: statement<{ outstanding: boolean }>(
    'leases_outstanding',
    `
    SELECT EXISTS (
      SELECT 1 FROM attempts a JOIN runs r ON r.id = a.run_id
      WHERE a.state = 'running' AND a.lease_expires IS NOT NULL AND r.state = 'running' AND r.dispatch = 'pull'
    ) OR EXISTS (
      SELECT 1 FROM gathers g JOIN runs r ON r.id = g.run_id
      WHERE g.state = 'running' AND g.lease_expires IS NOT NULL AND r.state = 'running' AND r.dispatch = 'pull'
    ) AS outstanding`,
  ),
  workersLost: statement('workers_lost', `UPDATE workers SET state = 'lost' WHERE id = ANY($1::text[]) AND state = 'running'`),
  expiredAttempts: statement<AttemptRow>(
    'expired_attempts',
    `
    SELECT * FROM attempts WHERE state = 'running' AND lease_expires <= ${NOW_MS}
    ORDER BY lease_expires, run_id, idx LIMIT $1`,
  ),
  expiredGathers: statement<GatherRow>(
    'expired_gathers',
    `
    SELECT * FROM gathers WHERE state = 'running' AND lease_expires <= ${NOW_MS}
    ORDER BY lease_expires, run_id, attempt LIMIT $1`,
  ),
};
