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
  // 4: the gather's attempts get their own table (they were task index -1, their cache entries
  // too), and a run says how its attempts get compute instead of the queries naming a backend
  `
  CREATE TABLE gathers (
    run_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    dir TEXT NOT NULL,
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
    worker TEXT,
    lease_expires INTEGER,
    -- set when it succeeded: the same gather over the same task results is done work
    cache_key TEXT,
    PRIMARY KEY (run_id, attempt)
  ) WITHOUT ROWID;
  CREATE INDEX gathers_by_lease ON gathers (lease_expires) WHERE state = 'running' AND lease_expires IS NOT NULL;
  CREATE INDEX gathers_by_worker ON gathers (worker) WHERE state = 'running' AND worker IS NOT NULL;
  CREATE INDEX gathers_by_cache_key ON gathers (cache_key) WHERE cache_key IS NOT NULL;

  INSERT INTO gathers (run_id, attempt, state, dir, launched_at, reason, exit_code, signal, started_at, ended_at,
                       peak_memory, cpu_ms, host, error, worker, lease_expires, cache_key)
  SELECT a.run_id, a.attempt, a.state, a.dir, a.launched_at, a.reason, a.exit_code, a.signal, a.started_at, a.ended_at,
         a.peak_memory, a.cpu_ms, a.host, a.error, a.worker, a.lease_expires,
         (SELECT min(c.key) FROM cache c WHERE c.run_id = a.run_id AND c.idx = -1 AND c.attempt = a.attempt)
  FROM attempts a WHERE a.idx = -1;
  DELETE FROM cache WHERE idx = -1;
  DELETE FROM attempts WHERE idx = -1;

  ALTER TABLE runs ADD COLUMN dispatch TEXT NOT NULL DEFAULT 'push';
  -- the last place a backend's name decides anything: its runs were the pulled ones
  UPDATE runs SET dispatch = 'pull' WHERE backend = 'workers';
  DROP INDEX runs_of_workers;
  CREATE INDEX runs_pulled ON runs (id) WHERE state = 'running' AND dispatch = 'pull';
  `,
  // 5: platform failures (lost, infra) a task was retried after without charge, bounded by retry.platform_max
  `
  ALTER TABLE tasks ADD COLUMN platform_failures INTEGER NOT NULL DEFAULT 0;
  `,
  // 6: each attempt (of a task or a gather) records the launcher that supervises it, so a later
  // coordinator adopts attempts started under different launchers (runs.launcher is only the
  // current coordinator's)
  `
  ALTER TABLE attempts ADD COLUMN launcher TEXT;
  ALTER TABLE gathers ADD COLUMN launcher TEXT;
  `,
];
