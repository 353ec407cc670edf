import { afterAll, beforeAll, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { describeStoreLocation, openStore } from '../src/store/open-store.js';
import { PostgresConnection } from '../src/store/postgres/postgres-connection.js';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import { StorePatience } from '../src/store/store-patience.js';
import type { NewTask } from '../src/store/records.js';
import { createDatabase, describeWithPostgres } from './services/postgres.js';
import { storeConformance } from './store-conformance.js';
import pg from 'pg';

describeWithPostgres('PostgreSQL store', (adminUrl) => {
  // One database for this file; each test starts from an empty schema.
  let url = '';
  let admin: pg.Client;
  beforeAll(async () => {
    url = await createDatabase(adminUrl, 'fanout_store_test');
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
  });

  storeConformance('PostgreSQL', {
    shared: true,
    async open() {
      await admin.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
      return PostgresStore.open(url);
    },
    async openAnother() {
      return PostgresStore.open(url);
    },
    async writeNewerSchema() {
      await admin.query('UPDATE fanout_schema SET version = version + 1');
    },
  });

  async function refusal(location: string): Promise<string> {
    try {
      const store = await openStore(location, '/unused');
      await store.close();
    } catch (error) {
      expect(error).toBeInstanceOf(UserError);
      return (error as UserError).describe();
    }
    throw new Error(`opening ${location} did not fail`);
  }

  function withCredentials(user: string, password: string, database?: string): string {
    const parsed = new URL(url);
    parsed.username = user;
    parsed.password = password;
    if (database) parsed.pathname = `/${database}`;
    return parsed.toString();
  }

  it('says which server it cannot reach, without the password', async () => {
    expect(await refusal('postgres://fanout:secret@127.0.0.1:1/x')).toBe(
      'cannot reach the store at postgres://fanout@127.0.0.1:1/x (connection refused); check --store / FANOUT_STORE and that PostgreSQL is running',
    );
  });

  it('says when the server refuses the credentials', async () => {
    const where = `${new URL(url).hostname}:${new URL(url).port}`;
    const expected = (user: string) => `PostgreSQL refused the credentials of user "${user}" at ${where}; check the user and password in the store URL`;
    expect(await refusal(withCredentials('fanout', 'wrong-secret'))).toBe(expected('fanout'));
    expect(await refusal(withCredentials('nobody', 'wrong-secret'))).toBe(expected('nobody'));
    expect(await refusal(withCredentials('fanout', ''))).toBe(expected('fanout'));
  });

  it('says when the database does not exist', async () => {
    const where = `${new URL(url).hostname}:${new URL(url).port}`;
    const message = await refusal(withCredentials('fanout', new URL(url).password, 'no_such_db'));
    expect(message).toBe(`database "no_such_db" does not exist at ${where}; create it (createdb no_such_db) or fix the store URL`);
  });

  it('refuses a newer schema naming the store without its password', async () => {
    await (await PostgresStore.open(url)).close();
    await admin.query('UPDATE fanout_schema SET version = version + 1');
    try {
      const message = await refusal(url);
      const password = new URL(url).password;
      expect(message).toMatch(
        /^the store postgres:\/\/fanout@[^ ]+\/fanout_store_test was written by a newer fanout \(schema \d+, this fanout knows \d+\); upgrade fanout, or use another store$/,
      );
      expect(message).not.toContain(password);
    } finally {
      await admin.query('UPDATE fanout_schema SET version = version - 1');
    }
  });

  it('names the store forms it accepts', async () => {
    expect(await refusal('mysql://u:pw@h/db')).toBe(
      'the store mysql://u@h/db is not one fanout knows; give a postgres://user:password@host:port/database URL, or leave out --store / FANOUT_STORE for SQLite in the fanout home',
    );
    expect(describeStoreLocation('postgresql://u:pw@h:5/db?password=pw&sslmode=require')).toBe('postgresql://u@h:5/db?sslmode=require');
  });

  it('lets two processes open a fresh database at once', async () => {
    await admin.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open(url)));
    expect(new Set(stores.map((s) => s.id)).size).toBe(1);
    for (const store of stores) await store.close();
  });

  it('rides out a connection the server drops in the middle of a transaction: the transaction runs again, the process lives on', async () => {
    const lines: string[] = [];
    const patience = new StorePatience({ name: 'test', giveUpMs: 30_000, say: (line) => lines.push(line) });
    const { connection } = await PostgresConnection.open(url, patience);
    try {
      let tries = 0;
      const answer = await connection.transaction(async (query) => {
        tries++;
        const [me] = await query<{ pid: number }>({ name: 'fanout_test_pid', text: 'SELECT pg_backend_pid() AS pid' }, []);
        if (tries === 1) {
          // As a server restart does: the connection ends under a checked-out client.
          await admin.query('SELECT pg_terminate_backend($1)', [me!.pid]);
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        return (await query<{ one: number }>({ name: 'fanout_test_one', text: 'SELECT 1 AS one' }, []))[0]!.one;
      });
      expect(answer).toBe(1);
      expect(tries).toBe(2);
      expect(lines.join('\n')).toMatch(/is back/);
    } finally {
      await connection.close();
    }
  });

  it('records a run of 100,000 tasks in one go', async () => {
    const store = await PostgresStore.open(url);
    try {
      const tasks: NewTask[] = Array.from({ length: 100_000 }, (_, index) => ({
        index,
        name: `sample-${index}`,
        vars: { sample: `s${index}`, lane: String(index % 8) },
        cacheKey: `k${index}`,
        state: 'pending',
        cpus: 1,
        memory: 2 ** 31,
        timeMs: null,
      }));
      // Its speed is measured in bench/store-probe.mjs, not here: a timed test fails whenever the machine is busy.
      const created = await store.createRun(
        { job: 'big', jobFile: '/j', spec: { name: 'big' } as never, backend: 'workers', dispatch: 'pull', planKey: 'p', tasks, coordinator: null },
        () => true,
      );
      expect('run' in created).toBe(true);
      const runId = 'run' in created ? created.run.id : -1;
      expect((await store.counts(runId)).pending).toBe(100_000);
      expect(await store.getTask(runId, 'sample-99999')).toMatchObject({ memory: 2 ** 31, vars: { sample: 's99999', lane: '7' } });
    } finally {
      await store.close();
    }
  });
});
