import { createHash, randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import pg from 'pg';
import { UserError } from '../../errors.js';
import type { StorePatience } from '../store-patience.js';
import { MIGRATIONS } from './migrations.js';

/**
 * The pool of connections every part of the store shares, brought up to date when opened.
 * Statements are prepared once per connection by name, so a statement's name (`fanout_…`) is
 * unique across the ledger, the queue and the queries. Times come from the server's clock.
 */
export class PostgresConnection {
  private constructor(
    private readonly pool: pg.Pool,
    /** Every statement rides out an outage of the server through it (the first connect does not: a wrong URL fails at once). */
    private readonly patience: StorePatience,
  ) {}

  /** Connect, and bring the schema up to date (or refuse one written by a newer fanout); returns the store's id too. */
  static async open(url: string, patience: StorePatience): Promise<{ connection: PostgresConnection; storeId: string }> {
    const pool = new pg.Pool({
      connectionString: url,
      max: 4,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 60_000,
      // The store's statements are prepared once per connection and run thousands of times with
      // the same shape; planning each run anew took about a third of the server's CPU per task
      // (bench/workers.mjs). An `options` parameter in the URL replaces this one.
      options: '-c plan_cache_mode=force_generic_plan',
    });
    // A pooled connection that drops while idle is replaced on next use; nothing to report then.
    pool.on('error', () => undefined);
    try {
      const client = await pool.connect().catch((error: unknown) => {
        throw connectionProblem(error, url);
      });
      // See `transaction`: a drop while migrating fails the migration, not the process.
      const dropped = () => undefined;
      client.on('error', dropped);
      try {
        const storeId = await migrate(client, url);
        return { connection: new PostgresConnection(pool, patience), storeId };
      } finally {
        client.off('error', dropped);
        client.release();
      }
    } catch (error) {
      await pool.end();
      throw error;
    }
  }

  /** One statement on any pooled connection: a transaction of its own. */
  async query<R>(statement: Statement<R>, values: unknown[]): Promise<R[]> {
    return this.patience.call(() =>
      retryingDeadlocks(async () => (await this.pool.query<R & pg.QueryResultRow>({ name: statement.name, text: statement.text, values })).rows),
    );
  }

  /** Statements on one connection in one transaction, all or nothing. */
  async transaction<T>(work: (query: Query) => Promise<T>): Promise<T> {
    // A transaction cut off by an outage rolled back, so it runs again whole. (One whose COMMIT
    // got through just before its answer was lost runs twice; every write here is one a second
    // run leaves as it is, or, for a claim, whose attempts go back to the queue unstarted.)
    return this.patience.call(() =>
      retryingDeadlocks(async () => {
        const client = await this.pool.connect();
        let broken: Error | undefined;
        // The pool listens for a dropped connection only while it is idle: checked out, the drop
        // is also an 'error' event on the client, which would end the process unheard. The
        // statement in flight fails with it anyway; the client is then not reused.
        const dropped = (error: Error) => {
          broken = error;
        };
        client.on('error', dropped);
        try {
          await client.query('BEGIN');
          const result = await work(
            async <R>(statement: Statement<R>, values: unknown[]) =>
              (await client.query<R & pg.QueryResultRow>({ name: statement.name, text: statement.text, values })).rows,
          );
          await client.query('COMMIT');
          return result;
        } catch (error) {
          await client.query('ROLLBACK').catch((rollbackFailed: Error) => {
            broken = rollbackFailed;
          });
          throw error;
        } finally {
          client.off('error', dropped);
          client.release(broken);
        }
      }),
    );
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** A statement inside a transaction. */
export type Query = <R>(statement: Statement<R>, values: unknown[]) => Promise<R[]>;

/** A prepared statement, and the rows it gives: its name makes each connection parse and plan it once. */
export interface Statement<R> {
  name: string;
  text: string;
  /** Never set: carries the row type. */
  readonly row?: R;
}

export const statement = <R = never>(name: string, text: string): Statement<R> => ({ name: `fanout_${name}`, text });

/** A short name for one shape of a query built from fixed pieces. */
export const shapeName = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

/** The server's clock in ms since the epoch; one value for the whole statement. */
export const NOW_MS = '(extract(epoch FROM statement_timestamp()) * 1000)::bigint';

const CONNECT_TIMEOUT_MS = 5_000;
/** Advisory lock key of the schema migration. */
const SCHEMA_LOCK = 0x66616e6f;

/** Apply the migrations the database lacks, one process at a time; returns the store's id. */
async function migrate(client: pg.PoolClient, url: string): Promise<string> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    // Only create when missing: a user without CREATE rights can still open a store made for it.
    const [exists] = (await client.query<{ found: boolean }>(`SELECT to_regclass('fanout_schema') IS NOT NULL AS found`)).rows;
    if (!exists?.found) await client.query('CREATE TABLE fanout_schema (version INTEGER NOT NULL, store_id TEXT NOT NULL)');
    let [schema] = (await client.query<{ version: number; store_id: string }>('SELECT version, store_id FROM fanout_schema')).rows;
    if (!schema) {
      schema = { version: 0, store_id: randomBytes(16).toString('hex') };
      await client.query('INSERT INTO fanout_schema (version, store_id) VALUES ($1, $2)', [schema.version, schema.store_id]);
    }
    const current = Number(schema.version);
    if (current > MIGRATIONS.length) {
      throw new UserError(
        `the store ${describePostgresUrl(url)} was written by a newer fanout (schema ${current}, this fanout knows ${MIGRATIONS.length})`,
        'upgrade fanout, or use another store',
      );
    }
    for (let version = current; version < MIGRATIONS.length; version++) await client.query(MIGRATIONS[version]!);
    if (current < MIGRATIONS.length) await client.query('UPDATE fanout_schema SET version = $1', [MIGRATIONS.length]);
    await client.query('COMMIT');
    return String(schema.store_id);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** A store URL fit to print: the password removed. */
export function describePostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    parsed.searchParams.delete('password');
    return parsed.toString();
  } catch {
    return url.replace(/(\/\/[^:/@]*):[^@/]*@/, '$1@');
  }
}

/** What a failed connection means to the user, as one line with its fix; never the password. */
function connectionProblem(error: unknown, url: string): Error {
  const parsed = new URL(url);
  const where = `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}`;
  const user = decodeURIComponent(parsed.username) || process.env.PGUSER || userInfo().username;
  const database = decodeURIComponent(parsed.pathname.slice(1)) || process.env.PGDATABASE || user;
  const code = (error as { code?: string }).code;
  const message = (error as Error).message ?? String(error);
  if (code === '28P01' || code === '28000' || /password must be a string|SASL/.test(message)) {
    return new UserError(`PostgreSQL refused the credentials of user "${user}" at ${where}`, 'check the user and password in the store URL', { cause: error });
  }
  if (code === '3D000') {
    return new UserError(`database "${database}" does not exist at ${where}`, `create it (createdb ${database}) or fix the store URL`, { cause: error });
  }
  const reason =
    {
      ECONNREFUSED: 'connection refused',
      ENOTFOUND: 'no such host',
      EAI_AGAIN: 'no such host',
      EHOSTUNREACH: 'host unreachable',
      ENETUNREACH: 'network unreachable',
      ETIMEDOUT: `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`,
    }[code ?? ''] ?? (/timeout/i.test(message) ? `no answer within ${CONNECT_TIMEOUT_MS / 1000} s` : message);
  return new UserError(`cannot reach the store at ${describePostgresUrl(url)} (${reason})`, 'check --store / FANOUT_STORE and that PostgreSQL is running', {
    cause: error,
  });
}

/** PostgreSQL breaks a deadlock by failing one side; that side's whole transaction can simply run again. */
async function retryingDeadlocks<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if ((error as { code?: string }).code !== '40P01' || attempt >= 3) throw error;
    }
  }
}
