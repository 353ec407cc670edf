/**
 * Numbered schema migrations. A store records the number it is at (SQLite `user_version`);
 * opening applies the ones it lacks, and refuses a store written by a newer fanout.
 * Never edit a shipped migration: add the next one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: runs, tasks, attempts, cache
  `
  CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    job_file TEXT NOT NULL,
    spec TEXT NOT NULL,
    backend TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    ended_at INTEGER,
    plan_key TEXT NOT NULL,
    coordinator TEXT,
    launcher TEXT,
    gather_state TEXT
  );
  CREATE INDEX runs_by_job ON runs (job, id);

  CREATE TABLE tasks (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    vars TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_base INTEGER NOT NULL DEFAULT 0,
    cpus INTEGER NOT NULL,
    memory INTEGER,
    time_ms INTEGER,
    reason TEXT,
    exit_code INTEGER,
    peak_memory INTEGER,
    duration_ms INTEGER,
    PRIMARY KEY (run_id, idx)
  ) WITHOUT ROWID;
  CREATE INDEX tasks_by_state ON tasks (run_id, state);
  CREATE INDEX tasks_by_name ON tasks (run_id, name);

  CREATE TABLE attempts (
    run_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    dir TEXT NOT NULL,
    memory INTEGER,
    time_ms INTEGER,
    launched_at INTEGER NOT NULL,
    reason TEXT,
    exit_code INTEGER,
    signal TEXT,
    started_at INTEGER,
    ended_at INTEGER,
    peak_memory INTEGER,
    cpu_ms INTEGER,
    host TEXT,
    error TEXT,
    PRIMARY KEY (run_id, idx, attempt)
  ) WITHOUT ROWID;
  CREATE INDEX attempts_running ON attempts (run_id, state);

  CREATE TABLE cache (
    key TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    out TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
  // 2: the queue of the `workers` backend: workers, who holds an attempt and until when
  `
  ALTER TABLE attempts ADD COLUMN worker TEXT;
  -- ms since the epoch; only attempts held by a pull worker have one
  ALTER TABLE attempts ADD COLUMN lease_expires INTEGER;
  CREATE INDEX attempts_by_lease ON attempts (lease_expires) WHERE state = 'running' AND lease_expires IS NOT NULL;
  CREATE INDEX attempts_by_worker ON attempts (worker) WHERE state = 'running' AND worker IS NOT NULL;

  CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    cpus INTEGER NOT NULL,
    memory INTEGER NOT NULL,
    launched_by TEXT,
    state TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
  );

  -- what a claim reads: pending tasks in queue order, runs that pull workers serve
  CREATE INDEX tasks_pending ON tasks (run_id, idx) WHERE state = 'pending';
  CREATE INDEX runs_of_workers ON runs (id) WHERE state = 'running' AND backend = 'workers';
  `,
  // 3: the dashboard's task table sorts a run's tasks by what they measured, a page at a time
  `
  CREATE INDEX tasks_by_duration ON tasks (run_id, duration_ms);
  CREATE INDEX tasks_by_peak_memory ON tasks (run_id, peak_memory);
  `,
];
