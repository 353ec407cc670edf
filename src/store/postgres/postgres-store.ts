import { ComposedStore } from '../composed-store.js';
import { PostgresConnection } from './postgres-connection.js';
import { PostgresLedger } from './postgres-ledger.js';
import { PostgresQueries } from './postgres-queries.js';
import { PostgresQueue } from './postgres-queue.js';

export { describePostgresUrl } from './postgres-connection.js';

/**
 * The shared store: one PostgreSQL database that coordinators and pull workers on many machines
 * use at once. The ledger, the queue and the queries share one pool of connections.
 */
export class PostgresStore extends ComposedStore {
  readonly shared = true;

  private constructor(
    private readonly connection: PostgresConnection,
    /** The first characters of the id the store drew when it was created. */
    readonly id: string,
  ) {
    super(new PostgresLedger(connection), new PostgresQueue(connection), new PostgresQueries(connection));
  }

  /** Connect, and bring the schema up to date (or refuse one written by a newer fanout). */
  static async open(url: string): Promise<PostgresStore> {
    const { connection, storeId } = await PostgresConnection.open(url);
    return new PostgresStore(connection, storeId.slice(0, 8));
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
