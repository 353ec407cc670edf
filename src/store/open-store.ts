import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { describePostgresUrl, PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/**
 * The store `--store` / FANOUT_STORE names: none is SQLite in the fanout home (`<home>/state.db`),
 * a `postgres://` URL is a PostgreSQL database, connected and brought up to date before returning.
 * `create: false` (commands that only read) leaves a home without a store as it is.
 */
export async function openStore(location: string | undefined, home: string, options: { create?: boolean } = {}): Promise<Store> {
  if (location === undefined || location === '') return new SqliteStore(sqliteStorePath(home), options);
  if (POSTGRES_URL.test(location)) {
    if (!URL.canParse(location)) {
      throw new UserError(`the store URL ${describeStoreLocation(location)} is not a valid URL`, 'write it as postgres://user:password@host:port/database');
    }
    return PostgresStore.open(location);
  }
  throw new UserError(
    `the store ${describeStoreLocation(location)} is not one fanout knows`,
    'give a postgres://user:password@host:port/database URL, or leave out --store / FANOUT_STORE for SQLite in the fanout home',
  );
}

/** The SQLite store of a fanout home. */
export function sqliteStorePath(home: string): string {
  return join(resolve(home), 'state.db');
}

/** A store location fit to print (messages, `fanout status`): a URL's password removed. */
export function describeStoreLocation(location: string): string {
  return location.includes('://') ? describePostgresUrl(location) : location;
}
