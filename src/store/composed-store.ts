import type { RunLedger } from './run-ledger.js';
import type { RunQueries } from './run-queries.js';
import type { Store } from './store.js';
import type { WorkQueue } from './work-queue.js';

/**
 * A Store made of its three parts: each implementation (SQLite, PostgreSQL) writes a ledger, a
 * queue and the queries over its own connection, and this hands every call to the part it
 * belongs to. What is left to an implementation is who it is (`id`, `shared`) and `close`.
 */
export abstract class ComposedStore implements Store {
  abstract readonly id: string;
  abstract readonly shared: boolean;
  abstract close(): Promise<void>;
  abstract reachableFor(): number;

  protected constructor(
    private readonly ledger: RunLedger,
    private readonly queue: WorkQueue,
    private readonly queries: RunQueries,
  ) {}

  createRun(...args: Parameters<RunLedger['createRun']>) {
    return this.ledger.createRun(...args);
  }
  claimRun(...args: Parameters<RunLedger['claimRun']>) {
    return this.ledger.claimRun(...args);
  }
  releaseRun(...args: Parameters<RunLedger['releaseRun']>) {
    return this.ledger.releaseRun(...args);
  }
  setLauncher(...args: Parameters<RunLedger['setLauncher']>) {
    return this.ledger.setLauncher(...args);
  }
  commit(...args: Parameters<RunLedger['commit']>) {
    return this.ledger.commit(...args);
  }
  startGather(...args: Parameters<RunLedger['startGather']>) {
    return this.ledger.startGather(...args);
  }
  endGather(...args: Parameters<RunLedger['endGather']>) {
    return this.ledger.endGather(...args);
  }

  registerWorker(...args: Parameters<WorkQueue['registerWorker']>) {
    return this.queue.registerWorker(...args);
  }
  listWorkers(...args: Parameters<WorkQueue['listWorkers']>) {
    return this.queue.listWorkers(...args);
  }
  retireWorker(...args: Parameters<WorkQueue['retireWorker']>) {
    return this.queue.retireWorker(...args);
  }
  claim(...args: Parameters<WorkQueue['claim']>) {
    return this.queue.claim(...args);
  }
  heartbeat(...args: Parameters<WorkQueue['heartbeat']>) {
    return this.queue.heartbeat(...args);
  }
  started(...args: Parameters<WorkQueue['started']>) {
    return this.queue.started(...args);
  }
  leasesOutstanding(...args: Parameters<WorkQueue['leasesOutstanding']>) {
    return this.queue.leasesOutstanding(...args);
  }
  workersLost(...args: Parameters<WorkQueue['workersLost']>) {
    return this.queue.workersLost(...args);
  }
  expiredAttempts(...args: Parameters<WorkQueue['expiredAttempts']>) {
    return this.queue.expiredAttempts(...args);
  }
  settleRun(...args: Parameters<WorkQueue['settleRun']>) {
    return this.queue.settleRun(...args);
  }

  getRun(...args: Parameters<RunQueries['getRun']>) {
    return this.queries.getRun(...args);
  }
  listRuns(...args: Parameters<RunQueries['listRuns']>) {
    return this.queries.listRuns(...args);
  }
  counts(...args: Parameters<RunQueries['counts']>) {
    return this.queries.counts(...args);
  }
  listTasks(...args: Parameters<RunQueries['listTasks']>) {
    return this.queries.listTasks(...args);
  }
  pageTasks(...args: Parameters<RunQueries['pageTasks']>) {
    return this.queries.pageTasks(...args);
  }
  getTask(...args: Parameters<RunQueries['getTask']>) {
    return this.queries.getTask(...args);
  }
  attempts(...args: Parameters<RunQueries['attempts']>) {
    return this.queries.attempts(...args);
  }
  runningAttempts(...args: Parameters<RunQueries['runningAttempts']>) {
    return this.queries.runningAttempts(...args);
  }
  gatherAttempts(...args: Parameters<RunQueries['gatherAttempts']>) {
    return this.queries.gatherAttempts(...args);
  }
  attemptSpans(...args: Parameters<RunQueries['attemptSpans']>) {
    return this.queries.attemptSpans(...args);
  }
  lookupCache(...args: Parameters<RunQueries['lookupCache']>) {
    return this.queries.lookupCache(...args);
  }
  gatherDone(...args: Parameters<RunQueries['gatherDone']>) {
    return this.queries.gatherDone(...args);
  }
}
