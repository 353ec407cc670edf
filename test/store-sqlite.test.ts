import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/open-store.js';
import { MIGRATIONS } from '../src/store/sqlite/migrations.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { storeConformance } from './store-conformance.js';

const folders: string[] = [];
let path = '';

function freshHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'fanout-store-'));
  folders.push(home);
  return home;
}

storeConformance('SQLite', {
  shared: false,
  async open() {
    path = join(freshHome(), 'state.db');
    return new SqliteStore(path);
  },
  async openAnother() {
    return new SqliteStore(path);
  },
  async writeNewerSchema() {
    const db = new Database(path);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
  },
});

describe('SQLite store in a fanout home', () => {
  it('is the default store, tagged as earlier fanouts tagged the home', async () => {
    const home = freshHome();
    const store = await openStore(undefined, home);
    try {
      expect(store).toBeInstanceOf(SqliteStore);
      expect((store as SqliteStore).path).toBe(join(home, 'state.db'));
      expect(store.id).toBe(createHash('sha256').update(home).digest('hex').slice(0, 8));
    } finally {
      await store.close();
    }
  });

  it('upgrades a store written before the queue existed, keeping its runs', async () => {
    const file = join(freshHome(), 'state.db');
    const old = new Database(file);
    old.exec(MIGRATIONS[0]!);
    old.pragma('user_version = 1');
    old
      .prepare(`INSERT INTO runs (job, job_file, spec, backend, state, created_at, plan_key, coordinator) VALUES ('j', '/j', '{}', 'local', 'succeeded', 1, 'p', NULL)`)
      .run();
    old.prepare(`INSERT INTO attempts (run_id, idx, attempt, state, dir, launched_at) VALUES (1, 0, 1, 'done', '/w', 2)`).run();
    old.close();
    const store = new SqliteStore(file);
    try {
      expect(await store.getRun(1)).toMatchObject({ job: 'j', state: 'succeeded' });
      expect(await store.attempts(1, 0)).toMatchObject([{ dir: '/w', worker: null }]);
      expect(await store.listWorkers({ all: true })).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});
