import { ComposedStore } from '../composed-store.js';
import { describePostgresUrl, PostgresConnection } from './postgres-connection.js';
import { PostgresLedger } from './postgres-ledger.js';
import { PostgresQueries } from './postgres-queries.js';
import { PostgresQueue } from './postgres-queue.js';
import { StorePatience, storePatienceMs } from '../store-patience.js';

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
    private readonly patience: StorePatience,
  ) {
    super(new PostgresLedger(connection), new PostgresQueue(connection), new PostgresQueries(connection));
  }

  /**
   * Connect, and bring the schema up to date (or refuse one written by a newer fanout). Later
   * calls ride out outages of the server as `patience` says.
   */
  static async open(url: string, patience = defaultPatience(url)): Promise<PostgresStore> {
    const { connection, storeId } = await PostgresConnection.open(url, patience);
    return new PostgresStore(connection, storeId.slice(0, 8), patience);
  }

  reachableFor(): number {
    return this.patience.reachableFor();
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}

/** FANOUT_STORE_PATIENCE long, saying so on stderr. */
function defaultPatience(url: string): StorePatience {
  return new StorePatience({ name: describePostgresUrl(url), giveUpMs: storePatienceMs(), say: (line) => process.stderr.write(`fanout: ${line}\n`) });
}
