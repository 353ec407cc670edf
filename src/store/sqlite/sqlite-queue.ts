import type { JobSpec } from '../../job/job-spec.js';
import { candidateWindow, canClaim, GATHER_CPUS, perTaskLimit, pickFitting, type ClaimCandidate } from '../claim-plan.js';
import type { AttemptRecord, GatherAttemptRecord, NewWorker, WorkerRecord } from '../records.js';
import {
  parseStoredSpec,
  toAttempt,
  toGatherAttempt,
  toTask,
  toWorker,
  type AttemptRow,
  type GatherRow,
  type RunRow,
  type TaskRow,
  type WorkerHoldingRow,
} from '../rows.js';
import type { AttemptKey, ClaimedAttempt, ClaimRequest, WorkQueue } from '../work-queue.js';
import { immediate, type SqliteDatabase } from './sqlite-connection.js';

/**
 * The work queue of pull dispatch in SQLite. A claim is one IMMEDIATE transaction: workers in
 * other processes claiming at the same time wait for it, then see what is left.
 */
export class SqliteQueue implements WorkQueue {
  private readonly statements;
  /** Run specs never change; a claim needs them for every attempt's folder. */
  private readonly specs = new Map<number, JobSpec>();

  constructor(private readonly db: SqliteDatabase) {
    this.statements = prepareStatements(db);
  }

  async registerWorker(worker: NewWorker): Promise<void> {
    this.statements.registerWorker.run({
      id: worker.id,
      host: worker.host,
      pid: worker.pid,
      cpus: worker.cpus,
      memory: worker.memory,
      launched_by: worker.launchedBy,
      now: Date.now(),
    });
  }

  async listWorkers(options: { all?: boolean } = {}): Promise<WorkerRecord[]> {
    return (options.all ? this.statements.listAllWorkers.all() : this.statements.listRunningWorkers.all()).map(toWorker);
  }

  async retireWorker(workerId: string): Promise<void> {
    const s = this.statements;
    immediate(this.db, () => {
      const now = Date.now();
      s.retireWorker.run(now, workerId);
      // Anything it still claimed is lost with it: reap it now rather than when the lease runs out.
      s.expireAttemptLeasesOf.run(now, workerId);
      s.expireGatherLeasesOf.run(now, workerId);
    });
  }

  async claim(request: ClaimRequest): Promise<ClaimedAttempt[]> {
    if (!canClaim(request)) return [];
    const s = this.statements;
    return immediate(this.db, (): ClaimedAttempt[] => {
      const gathers = s.queuedGathers
        .all(request.limit)
        .map((row): ClaimCandidate => ({ kind: 'gather', runId: row.id, attempt: row.attempts + 1, cpus: GATHER_CPUS, memory: null }));
      const tasks = s.pendingTasks
        .all({ ...perTaskLimit(request), window: candidateWindow(request) })
        .map((row): ClaimCandidate => ({ kind: 'task', runId: row.run_id, index: row.idx, attempt: row.attempts + 1, cpus: row.cpus, memory: row.memory }));
      const now = Date.now();
      const leaseExpires = now + request.leaseMs;
      return pickFitting([...gathers, ...tasks], request).map((chosen): ClaimedAttempt => {
        const run = { id: chosen.runId, spec: this.spec(chosen.runId) };
        if (chosen.kind === 'gather') {
          const dir = request.folders.gatherDir(run, chosen.attempt);
          s.insertGather.run({ run_id: chosen.runId, attempt: chosen.attempt, dir, launched_at: now, worker: request.workerId, lease_expires: leaseExpires });
          s.setGatherState.run('running', chosen.runId);
          return { kind: 'gather', runId: chosen.runId, attempt: chosen.attempt, dir };
        }
        const dir = request.folders.attemptDir(run, chosen.index, chosen.attempt);
        const task = toTask(s.claimTask.get(chosen.attempt, chosen.runId, chosen.index)!);
        s.insertAttempt.run({
          run_id: chosen.runId,
          idx: chosen.index,
          attempt: chosen.attempt,
          dir,
          memory: task.memory,
          time_ms: task.timeMs,
          launched_at: now,
          worker: request.workerId,
          lease_expires: leaseExpires,
        });
        return { kind: 'task', runId: chosen.runId, task, attempt: chosen.attempt, dir };
      });
    });
  }

  async heartbeat(workerId: string, holding: AttemptKey[], leaseMs: number): Promise<AttemptKey[]> {
    const s = this.statements;
    return immediate(this.db, () => {
      const now = Date.now();
      s.workerBeat.run(now, workerId);
      return holding.filter((held) => {
        const extended =
          held.kind === 'task'
            ? s.extendAttemptLease.get(now + leaseMs, held.runId, held.index, held.attempt, workerId)
            : s.extendGatherLease.get(now + leaseMs, held.runId, held.attempt, workerId);
        return extended?.run_state !== 'running';
      });
    });
  }

  async started(workerId: string, attempts: Array<Extract<AttemptKey, { kind: 'task' }>>): Promise<void> {
    const s = this.statements;
    immediate(this.db, () => {
      const now = Date.now();
      for (const a of attempts) s.started.run(now, a.runId, a.index, a.attempt, workerId);
    });
  }

  async leasesOutstanding(): Promise<boolean> {
    return this.statements.leasesOutstanding.get()!.outstanding === 1;
  }

  async workersLost(workerIds: string[]): Promise<void> {
    const s = this.statements;
    immediate(this.db, () => {
      for (const id of workerIds) s.workerLost.run(id);
    });
  }

  async expiredAttempts(limit: number): Promise<{ tasks: AttemptRecord[]; gathers: GatherAttemptRecord[] }> {
    const now = Date.now();
    return {
      tasks: this.statements.expiredAttempts.all(now, limit).map(toAttempt),
      gathers: this.statements.expiredGathers.all(now, limit).map(toGatherAttempt),
    };
  }

  async settleRun(runId: number, options: { hasGather: boolean }): Promise<'gather-queued' | 'succeeded' | 'failed' | null> {
    const s = this.statements;
    return immediate(this.db, () => {
      const run = s.getRun.get(runId);
      if (!run || run.state !== 'running') return null;
      const gather = run.gather_state;
      if (gather === 'pending' || gather === 'running') return null;
      const tasks = s.taskOutcomes.get({ run_id: runId })!;
      if (tasks.unfinished) return null;
      const allSucceeded = !tasks.unsuccessful;
      if (options.hasGather && allSucceeded && gather === null) {
        s.setGatherState.run('pending', runId);
        return 'gather-queued';
      }
      const state = allSucceeded && gather !== 'failed' ? 'succeeded' : 'failed';
      s.setRunState.run(state, Date.now(), runId);
      return state;
    });
  }

  private spec(runId: number): JobSpec {
    let spec = this.specs.get(runId);
    if (!spec) {
      spec = parseStoredSpec(this.statements.getSpec.get(runId)!.spec);
      this.specs.set(runId, spec);
    }
    return spec;
  }
}

/** SQLite gives numbers for every number column: the candidates need no conversion. */
type PendingTaskRow = { run_id: number; idx: number; attempts: number; cpus: number; memory: number | null };

function prepareStatements(db: SqliteDatabase) {
  // How many attempts a worker holds: of tasks and of gathers.
  const holding = `(SELECT COUNT(*) FROM attempts a WHERE a.worker = w.id AND a.state = 'running')
                 + (SELECT COUNT(*) FROM gathers g WHERE g.worker = w.id AND g.state = 'running')`;
  return {
    getRun: db.prepare<[number], RunRow>('SELECT * FROM runs WHERE id = ?'),
    getSpec: db.prepare<[number], Pick<RunRow, 'spec'>>('SELECT spec FROM runs WHERE id = ?'),
    setRunState: db.prepare<[string, number, number]>('UPDATE runs SET state = ?, ended_at = ? WHERE id = ?'),
    setGatherState: db.prepare<[string, number]>('UPDATE runs SET gather_state = ? WHERE id = ?'),
    // EXISTS, not counts: a run is settled after each result, and may have 100,000 tasks.
    taskOutcomes: db.prepare<{ run_id: number }, { unfinished: 0 | 1; unsuccessful: 0 | 1 }>(
      `SELECT EXISTS (SELECT 1 FROM tasks WHERE run_id = @run_id AND state IN ('pending', 'running')) AS unfinished,
              EXISTS (SELECT 1 FROM tasks WHERE run_id = @run_id AND state IN ('failed', 'cancelled')) AS unsuccessful`,
    ),
    insertAttempt: db.prepare<{
      run_id: number;
      idx: number;
      attempt: number;
      dir: string;
      memory: number | null;
      time_ms: number | null;
      launched_at: number;
      worker: string;
      lease_expires: number;
    }>(
      `INSERT INTO attempts (run_id, idx, attempt, state, dir, memory, time_ms, launched_at, worker, lease_expires)
       VALUES (@run_id, @idx, @attempt, 'running', @dir, @memory, @time_ms, @launched_at, @worker, @lease_expires)`,
    ),
    insertGather: db.prepare<{ run_id: number; attempt: number; dir: string; launched_at: number; worker: string; lease_expires: number }>(
      `INSERT INTO gathers (run_id, attempt, state, dir, launched_at, worker, lease_expires)
       VALUES (@run_id, @attempt, 'running', @dir, @launched_at, @worker, @lease_expires)`,
    ),

    registerWorker: db.prepare<{ id: string; host: string; pid: number; cpus: number; memory: number; launched_by: string | null; now: number }>(
      `INSERT INTO workers (id, host, pid, cpus, memory, launched_by, state, started_at, heartbeat_at)
       VALUES (@id, @host, @pid, @cpus, @memory, @launched_by, 'running', @now, @now)
       ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, cpus = excluded.cpus,
         memory = excluded.memory, launched_by = excluded.launched_by, state = 'running', heartbeat_at = excluded.heartbeat_at`,
    ),
    listRunningWorkers: db.prepare<[], WorkerHoldingRow>(
      `SELECT w.*, ${holding} AS holding FROM workers w WHERE w.state = 'running' ORDER BY w.started_at DESC, w.rowid DESC`,
    ),
    listAllWorkers: db.prepare<[], WorkerHoldingRow>(`SELECT w.*, ${holding} AS holding FROM workers w ORDER BY w.started_at DESC, w.rowid DESC`),
    retireWorker: db.prepare<[number, string]>(`UPDATE workers SET state = 'stopped', heartbeat_at = ? WHERE id = ?`),
    expireAttemptLeasesOf: db.prepare<[number, string]>(`UPDATE attempts SET lease_expires = ? WHERE worker = ? AND state = 'running'`),
    expireGatherLeasesOf: db.prepare<[number, string]>(`UPDATE gathers SET lease_expires = ? WHERE worker = ? AND state = 'running'`),
    workerBeat: db.prepare<[number, string]>(`UPDATE workers SET heartbeat_at = ?, state = CASE state WHEN 'lost' THEN 'running' ELSE state END WHERE id = ?`),
    extendAttemptLease: db.prepare<[number, number, number, number, string], { run_state: string | null }>(
      `UPDATE attempts SET lease_expires = ?
       WHERE run_id = ? AND idx = ? AND attempt = ? AND state = 'running' AND worker = ?
       RETURNING (SELECT state FROM runs WHERE runs.id = attempts.run_id) AS run_state`,
    ),
    extendGatherLease: db.prepare<[number, number, number, string], { run_state: string | null }>(
      `UPDATE gathers SET lease_expires = ?
       WHERE run_id = ? AND attempt = ? AND state = 'running' AND worker = ?
       RETURNING (SELECT state FROM runs WHERE runs.id = gathers.run_id) AS run_state`,
    ),
    started: db.prepare<[number, number, number, number, string]>(
      `UPDATE attempts SET started_at = ? WHERE run_id = ? AND idx = ? AND attempt = ? AND state = 'running' AND worker = ?`,
    ),
    leasesOutstanding: db.prepare<[], { outstanding: 0 | 1 }>(
      `SELECT EXISTS (
         SELECT 1 FROM attempts a JOIN runs r ON r.id = a.run_id
         WHERE a.state = 'running' AND a.lease_expires IS NOT NULL AND r.state = 'running' AND r.dispatch = 'pull'
       ) OR EXISTS (
         SELECT 1 FROM gathers g JOIN runs r ON r.id = g.run_id
         WHERE g.state = 'running' AND g.lease_expires IS NOT NULL AND r.state = 'running' AND r.dispatch = 'pull'
       ) AS outstanding`,
    ),
    workerLost: db.prepare<[string]>(`UPDATE workers SET state = 'lost' WHERE id = ? AND state = 'running'`),
    expiredAttempts: db.prepare<[number, number], AttemptRow>(
      `SELECT * FROM attempts WHERE state = 'running' AND lease_expires <= ? ORDER BY lease_expires, run_id, idx LIMIT ?`,
    ),
    expiredGathers: db.prepare<[number, number], GatherRow>(
      `SELECT * FROM gathers WHERE state = 'running' AND lease_expires <= ? ORDER BY lease_expires, run_id, attempt LIMIT ?`,
    ),
    // A run whose gather runs already (started by hand while it was queued) is not offered again.
    queuedGathers: db.prepare<[number], { id: number; attempts: number }>(
      `SELECT r.id, (SELECT COALESCE(MAX(g.attempt), 0) FROM gathers g WHERE g.run_id = r.id) AS attempts
       FROM runs r WHERE r.state = 'running' AND r.dispatch = 'pull' AND r.gather_state = 'pending'
         AND NOT EXISTS (SELECT 1 FROM gathers g WHERE g.run_id = r.id AND g.state = 'running')
       ORDER BY r.id LIMIT ?`,
    ),
    // Runs outside, then each run's pending tasks in order: done tasks and pushed runs are never walked.
    pendingTasks: db.prepare<{ cpus: number; memory: number; window: number }, PendingTaskRow>(
      `SELECT t.run_id, t.idx, t.attempts, t.cpus, t.memory
       FROM runs r CROSS JOIN tasks t INDEXED BY tasks_pending ON t.run_id = r.id AND t.state = 'pending'
       WHERE r.state = 'running' AND r.dispatch = 'pull' AND t.cpus <= @cpus AND COALESCE(t.memory, 0) <= @memory
       ORDER BY r.id, t.idx LIMIT @window`,
    ),
    claimTask: db.prepare<[number, number, number], TaskRow>(`UPDATE tasks SET state = 'running', attempts = ? WHERE run_id = ? AND idx = ? RETURNING *`),
  };
}
