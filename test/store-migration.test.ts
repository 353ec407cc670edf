import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS as POSTGRES_MIGRATIONS } from '../src/store/postgres/migrations.js';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import type { AttemptOutcome } from '../src/store/records.js';
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../src/store/sqlite/migrations.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import type { ClaimRequest } from '../src/store/work-queue.js';
import { createDatabase, describeWithPostgres } from './services/postgres.js';

/**
 * Opening a store written by the last release, where the gather was task index -1 (its cache
 * entry too) and pull runs were those of backend `workers`. The SQLite store is the fixture
 * test/fixtures/release-0.1.0-store.db, written by that release's own code (see
 * test/fixtures/README.md); PostgreSQL gets the same rows under the release's schema.
 */

const FIXTURE = new URL('./fixtures/release-0.1.0-store.db', import.meta.url).pathname;
/** The schema versions of the release that wrote the fixture. */
const RELEASE_SQLITE_VERSION = 3;
const RELEASE_POSTGRES_VERSION = 2;
const GiB = 1024 ** 3;
const TABLES = ['runs', 'tasks', 'attempts', 'cache', 'workers'] as const;

const folders: string[] = [];
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

function copyOfFixture(): string {
  const folder = mkdtempSync(join(tmpdir(), 'fanout-migration-'));
  folders.push(folder);
  const path = join(folder, 'state.db');
  copyFileSync(FIXTURE, path);
  return path;
}

function claimRequest(workerId: string): ClaimRequest {
  return {
    workerId,
    cpus: 4,
    memory: 16 * GiB,
    limit: 5,
    leaseMs: 60_000,
    folders: {
      attemptDir: (run, index, attempt) => `/work/${run.spec.name}-${run.id}/${index}.${attempt}`,
      gatherDir: (run, attempt) => `/work/${run.spec.name}-${run.id}/gather.${attempt}`,
    },
  };
}

const ok: AttemptOutcome = { reason: 'ok', exitCode: 0, signal: null, startedAt: 5_000, endedAt: 6_000, peakMemory: null, cpuMs: null, host: 'w2-host' };

/** Everything the release wrote reads back through the new contract, and the queue goes on from it. */
async function checkReleaseStore(store: Store, another: () => Promise<Store>): Promise<void> {
  // Runs: how their attempts get compute, from the backend they named.
  const runs = await store.listRuns();
  expect(runs.map((r) => [r.id, r.job, r.backend, r.dispatch, r.state, r.gatherState])).toEqual([
    [3, 'pulled', 'workers', 'pull', 'running', null],
    [2, 'gathered', 'workers', 'pull', 'running', 'pending'],
    [1, 'pushed', 'local', 'push', 'succeeded', 'succeeded'],
  ]);
  expect(runs[2]).toMatchObject({ coordinator: null, endedAt: 3_000, planKey: 'plan-pushed', spec: { name: 'pushed', gather: 'cat {{ outputs }}' } });

  // The push run: its tasks and their cache entries as they were; its gather in attempts of its own.
  expect((await store.listTasks(1)).map((t) => [t.name, t.state, t.attempts, t.memory, t.durationMs])).toEqual([
    ['t0', 'succeeded', 1, 2 * GiB, 500],
    ['t1', 'succeeded', 1, null, 500],
  ]);
  // Tasks of the release had no platform failures counted: each starts its allowance afresh.
  expect((await store.listTasks(1)).map((t) => t.platformFailures)).toEqual([0, 0]);
  expect(await store.attempts(1, 0)).toMatchObject([
    { runId: 1, index: 0, attempt: 1, state: 'done', reason: 'ok', memory: 2 * GiB, host: 'node0', dir: '/work/pushed/0.1' },
  ]);
  expect(await store.attempts(1, -1)).toEqual([]);
  expect((await store.attemptSpans(1)).map((s) => s.index).sort()).toEqual([0, 1]);
  expect(await store.gatherAttempts(1)).toEqual([
    {
      runId: 1,
      attempt: 1,
      state: 'done',
      dir: '/work/pushed/gather.1',
      launchedAt: 2_000,
      reason: 'ok',
      exitCode: 0,
      signal: null,
      startedAt: 2_100,
      endedAt: 2_600,
      peakMemory: GiB,
      cpuMs: 400,
      host: 'coordinator',
      error: null,
      worker: null,
      launcher: null,
      cacheKey: 'gather:release-push',
    },
  ]);
  expect(await store.gatherDone('gather:release-push')).toBe(true);
  const cache = await store.lookupCache(['gather:release-push', 'task-key-0', 'task-key-1b', 'gathered-0']);
  expect([...cache.keys()].sort()).toEqual(['gathered-0', 'task-key-0', 'task-key-1b']);
  expect(cache.get('task-key-1b')).toEqual({ key: 'task-key-1b', runId: 1, index: 1, attempt: 1, out: '/out/pushed/t1' });

  // The pull run whose gather failed on a worker and is queued again.
  expect(await store.gatherAttempts(2)).toMatchObject([
    { runId: 2, attempt: 1, state: 'done', reason: 'exit', exitCode: 3, worker: 'w1', host: 'worker-host', dir: '/work/gathered-2/gather.1', cacheKey: null },
  ]);
  expect(await store.runningAttempts(2)).toEqual([]);

  // The pull run with a task held by worker w1 under a lease that still runs.
  expect((await store.listTasks(3)).map((t) => [t.name, t.state, t.attempts])).toEqual([
    ['t0', 'running', 1],
    ['t1', 'pending', 0],
  ]);
  expect(await store.runningAttempts(3)).toMatchObject([{ runId: 3, index: 0, attempt: 1, state: 'running', worker: 'w1', memory: GiB, dir: '/work/pulled-3/0.1' }]);
  expect((await store.listWorkers()).map((w) => [w.id, w.holding, w.launchedBy])).toEqual([['w1', 1, 'slurm job 1234']]);
  expect(await store.expiredAttempts(10)).toEqual({ tasks: [], gathers: [] });
  expect(await store.heartbeat('w1', [{ kind: 'task', runId: 3, index: 0, attempt: 1 }], 60_000)).toEqual([]);

  // The queue goes on: the queued gather first (its next attempt), then the pending task.
  const claimed = await store.claim(claimRequest('w2'));
  expect(claimed.map((c) => (c.kind === 'gather' ? [c.kind, c.runId, c.attempt, c.dir] : [c.kind, c.runId, c.task.name, c.attempt]))).toEqual([
    ['gather', 2, 2, '/work/gathered-2/gather.2'],
    ['task', 3, 't1', 1],
  ]);
  expect((await store.getRun(2))!.gatherState).toBe('running');
  expect((await store.listWorkers()).map((w) => [w.id, w.holding])).toEqual([['w1', 1]]);
  expect(await store.heartbeat('w2', [{ kind: 'gather', runId: 2, attempt: 2 }], 60_000)).toEqual([]);
  expect(await store.endGather({ runId: 2, attempt: 2, result: ok, gatherState: 'succeeded', cacheKey: 'gather:again' })).toBe(true);
  expect(await store.settleRun(2, { hasGather: true })).toBe('succeeded');
  expect(await store.gatherDone('gather:again')).toBe(true);
  // A gather started by hand is numbered after the ones the release recorded.
  expect(await store.startGather(1, { dir: (attempt) => `/work/pushed/gather.${attempt}`, launchedAt: 7_000 })).toMatchObject({
    attempt: 2,
    dir: '/work/pushed/gather.2',
  });
  expect(await store.startGather(1, { dir: () => '/never', launchedAt: 7_001 })).toBeNull();

  // Opened again, nothing is migrated twice.
  const again = await another();
  try {
    expect((await again.gatherAttempts(1)).map((g) => g.attempt)).toEqual([1, 2]);
    expect((await again.getRun(3))!.dispatch).toBe('pull');
  } finally {
    await again.close();
  }
}

describe('SQLite store written by the last release', () => {
  it('is what the fixture says it is', () => {
    const db = new Database(FIXTURE, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(RELEASE_SQLITE_VERSION);
      expect(db.prepare('SELECT count(*) AS n FROM attempts WHERE idx = -1').get()).toEqual({ n: 2 });
    } finally {
      db.close();
    }
  });

  it('opens with its gathers moved to their own table and its runs given their dispatch', async () => {
    const path = copyOfFixture();
    const store = new SqliteStore(path);
    try {
      await checkReleaseStore(store, async () => new SqliteStore(path));
    } finally {
      await store.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_MIGRATIONS.length);
      expect(db.prepare('SELECT count(*) AS n FROM attempts WHERE idx < 0').get()).toEqual({ n: 0 });
      expect(db.prepare('SELECT count(*) AS n FROM cache WHERE idx < 0').get()).toEqual({ n: 0 });
      expect(db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ('runs_of_workers', 'runs_pulled')`).all()).toEqual([{ name: 'runs_pulled' }]);
    } finally {
      db.close();
    }
  });
});

describeWithPostgres('PostgreSQL store written by the last release', (adminUrl) => {
  let url = '';
  let admin: pg.Client;
  beforeAll(async () => {
    url = await createDatabase(adminUrl, 'fanout_store_migration_test');
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
  });

  /** The release's schema (its migrations, unchanged here) holding the fixture's rows, as the release wrote them. */
  async function writeReleaseStore(): Promise<void> {
    await admin.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    await admin.query('CREATE TABLE fanout_schema (version INTEGER NOT NULL, store_id TEXT NOT NULL)');
    await admin.query(`INSERT INTO fanout_schema (version, store_id) VALUES ($1, 'release0release0release0release0')`, [RELEASE_POSTGRES_VERSION]);
    for (const migration of POSTGRES_MIGRATIONS.slice(0, RELEASE_POSTGRES_VERSION)) await admin.query(migration);
    const fixture = new Database(FIXTURE, { readonly: true });
    try {
      for (const table of TABLES) {
        for (const row of fixture.prepare(`SELECT * FROM ${table}`).all() as Array<Record<string, unknown>>) {
          const columns = Object.keys(row);
          await admin.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, Object.values(row));
        }
      }
    } finally {
      fixture.close();
    }
    await admin.query(`SELECT setval(pg_get_serial_sequence('runs', 'id'), (SELECT max(id) FROM runs))`);
  }

  it('opens with its gathers moved to their own table and its runs given their dispatch', async () => {
    await writeReleaseStore();
    expect((await admin.query('SELECT count(*)::int AS n FROM attempts WHERE idx = -1')).rows).toEqual([{ n: 2 }]);
    const store = await PostgresStore.open(url);
    try {
      expect(store.id).toBe('release0');
      await checkReleaseStore(store, () => PostgresStore.open(url));
    } finally {
      await store.close();
    }
    expect((await admin.query('SELECT version FROM fanout_schema')).rows).toEqual([{ version: POSTGRES_MIGRATIONS.length }]);
    expect((await admin.query('SELECT count(*)::int AS n FROM attempts WHERE idx < 0')).rows).toEqual([{ n: 0 }]);
    expect((await admin.query('SELECT count(*)::int AS n FROM cache WHERE idx < 0')).rows).toEqual([{ n: 0 }]);
    expect((await admin.query(`SELECT indexname FROM pg_indexes WHERE indexname IN ('runs_of_workers', 'runs_pulled')`)).rows).toEqual([{ indexname: 'runs_pulled' }]);
  });
});
