import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { ComposedStore } from '../composed-store.js';
import { openDatabase, openEmptyDatabase, type SqliteDatabase } from './sqlite-connection.js';
import { withSqliteProblems } from './sqlite-problems.js';
import { SqliteLedger } from './sqlite-ledger.js';
import { SqliteQueries } from './sqlite-queries.js';
import { SqliteQueue } from './sqlite-queue.js';

/**
 * The embedded default store: one SQLite file in WAL mode, reachable from this machine only.
 * Its methods are async to share the contract with PostgreSQL, but each runs synchronously.
 * The ledger, the queue and the queries each prepare their statements on the one connection.
 */
export class SqliteStore extends ComposedStore {
  /** A hash of the fanout home (the store's folder): the tag earlier fanouts gave its run folders. */
  readonly id: string;
  readonly shared = false;

  private readonly db: SqliteDatabase;

  /** @param options.create false: a store file that does not exist is opened empty, in memory, and not created. */
  constructor(
    readonly path: string,
    options: { create?: boolean } = {},
  ) {
    const db = options.create === false && !existsSync(path) ? openEmptyDatabase() : openDatabase(path);
    const told = <T extends object>(part: T) => withSqliteProblems(part, path);
    super(told(new SqliteLedger(db)), told(new SqliteQueue(db)), told(new SqliteQueries(db)));
    this.db = db;
    this.id = createHash('sha256').update(dirname(path)).digest('hex').slice(0, 8);
  }

  /** A file on this machine: never out of reach the way a server is. */
  reachableFor(): number {
    return Infinity;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
