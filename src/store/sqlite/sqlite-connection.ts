import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { UserError } from '../../errors.js';
import { MIGRATIONS } from './migrations.js';
import { readOnlyFix, systemProblem } from '../../system-problems.js';
import { sqliteProblem } from './sqlite-problems.js';

/**
 * The SQLite file every part of the store shares: opened in WAL mode so several processes can
 * use it at once, and brought up to date. Its transactions that read before they write are
 * IMMEDIATE (they take the write lock first), so no process races another between the two.
 */
export type SqliteDatabase = Database.Database;

/**
 * Open (creating if need be) the store file. What the machine refuses — a read-only or full
 * home, a file that is no database — is a UserError naming the file.
 */
export function openDatabase(path: string): SqliteDatabase {
  try {
    return openUnchecked(path);
  } catch (error) {
    throw sqliteProblem(error, path);
  }
}

/**
 * A store that never existed, opened in memory: commands that only read (`status`, `validate`)
 * answer as for a new home without creating one.
 */
export function openEmptyDatabase(): SqliteDatabase {
  const db = new Database(':memory:');
  migrate(db, ':memory:');
  return db;
}

function openUnchecked(path: string): SqliteDatabase {
  createHome(dirname(path));
  const db = new Database(path);
  try {
    // First: switching a new file to WAL takes a lock that another process may hold a moment.
    db.pragma('busy_timeout = 10000');
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives a crash of any process; only a power loss may lose the last commits.
    db.pragma('synchronous = NORMAL');
    migrate(db, path);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Run `work` in an IMMEDIATE transaction: the write lock is taken before anything is read. */
export function immediate<T>(db: SqliteDatabase, work: () => T): T {
  return db.transaction(work).immediate();
}

function migrate(db: SqliteDatabase, path: string): void {
  // Read the version inside the write transaction: processes opening a new store at the same
  // moment (a fleet of workers starting) apply each migration once, one after the other.
  immediate(db, () => {
    const current = Number(db.pragma('user_version', { simple: true }));
    if (current > MIGRATIONS.length) {
      throw new UserError(
        `the store ${path} was written by a newer fanout (schema ${current}, this fanout knows ${MIGRATIONS.length})`,
        'upgrade fanout, or use another --home',
      );
    }
    for (let version = current; version < MIGRATIONS.length; version++) db.exec(MIGRATIONS[version]!);
    if (current < MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`);
  });
}

function createHome(home: string): void {
  try {
    mkdirSync(home, { recursive: true });
  } catch (error) {
    // A recursive mkdir under a read-only folder fails with ENOENT, which names no real cause.
    throw systemProblem(error) ?? new UserError(`the fanout home ${home} cannot be created (${(error as NodeJS.ErrnoException).code})`, readOnlyFix, { cause: error });
  }
}
