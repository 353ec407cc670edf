import type { RunLedger } from './run-ledger.js';
import type { RunQueries } from './run-queries.js';
import type { WorkQueue } from './work-queue.js';

/**
 * Durable state, split by purpose: the run's ledger (every change, written before it is acted
 * on), the work queue of pull dispatch, and the read-only queries of the faces. Each
 * implementation (SQLite, PostgreSQL) owns its connection and passes the same conformance suite
 * (test/store-conformance.ts).
 */
export interface Store extends RunLedger, WorkQueue, RunQueries {
  /**
   * A short stable tag of this store. Several stores may share one workdir, so a run's work
   * folder there carries it. SQLite: derived from the store's folder (the fanout home).
   * PostgreSQL: derived from an id the store draws once when it is created.
   */
  readonly id: string;
  /** Whether processes on other machines can reach this store (pull workers need one that is). */
  readonly shared: boolean;
  /**
   * How long the store has answered since this process last found it unreachable (ms; Infinity
   * when it never was, 0 during an outage). Leases run on the store's clock, so right after an
   * outage every lease looks expired: reapers wait until live workers had time to renew theirs.
   */
  reachableFor(): number;
  close(): Promise<void>;
}
