#!/usr/bin/env node
// fanout benchmark: how many tasks of `true` a queue of pull workers completes per second over a
// PostgreSQL store, with 1, 4 and 16 workers, against fanout's local backend on the same N, side
// by side in one run, and how much of the CPU the store's server takes.
// Run with `npm run bench:workers` (builds first), or `node bench/workers.mjs [options]` after a
// build. See bench/README.md ("Pull workers") for what is measured and what each column means.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createDatabase, startThrowawayPostgres } from '../scripts/pg/throwaway-postgres.mjs';
import { benchOptions, existingDir, f, log, median, positiveInt, requireBuilt } from './common.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = resolve(benchDir, '..');
const fanoutBin = join(root, 'bin', 'fanout.js');
const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------
// Options

const HELP = `Usage: node bench/workers.mjs [options]

  --workers <list>     worker counts, one scenario each (default 1,4,16)
  --n <count>          tasks per scenario (default 2000 with 1 worker, 5000 with more)
  --cpus <n>           --cpus of every worker: how many tasks it runs at once (default 2)
  --reps <count>       timed runs of each scenario, interleaved; the median counts (default 3)
  --durability <mode>  normal (fsync on, the server's defaults), off (fsync=off), or both (default normal)
  --local-max <n>      most tasks at once for the local reference (default 16)
  --setting <n=v>      a PostgreSQL server setting for every cluster (repeatable), e.g.
                       --setting plan_cache_mode=force_generic_plan; printed with the results
  --statements         load pg_stat_statements and print each scenario's statements (calls per task,
                       time, plans); adds a little server work, so the figures of such a run are marked
  --timeout <seconds>  longest one run may take before its processes are killed (default 600)
  --tmpdir <dir>       where the runs' temp folders go (default: os.tmpdir()); e.g. /dev/shm to take
                       the disk's metadata cost out of both backends
  --pgdir <dir>        where the cluster's folder goes (default: os.tmpdir()); on tmpfs an fsync costs
                       nothing, so keep it on a disk to measure normal durability
  --out <file>         the JSON copy (default bench/out/workers.json)
  --keep               keep the temp folders (printed) instead of deleting them
  -h, --help           this text
`;

const opts = benchOptions(
  {
    workers: { type: 'string', default: '1,4,16' },
    n: { type: 'string' },
    cpus: { type: 'string', default: '2' },
    reps: { type: 'string', default: '3' },
    durability: { type: 'string', default: 'normal' },
    'local-max': { type: 'string', default: '16' },
    setting: { type: 'string', multiple: true, default: [] },
    statements: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '600' },
    tmpdir: { type: 'string' },
    pgdir: { type: 'string' },
    out: { type: 'string', default: join(benchDir, 'out', 'workers.json') },
    keep: { type: 'boolean', default: false },
  },
  HELP,
);

const WORKER_COUNTS = [...new Set(opts.workers.split(',').map((w) => positiveInt('--workers', w.trim())))];
const FIXED_N = opts.n === undefined ? null : positiveInt('--n', opts.n);
const CPUS = positiveInt('--cpus', opts.cpus);
const REPS = positiveInt('--reps', opts.reps);
const LOCAL_MAX = positiveInt('--local-max', opts['local-max']);
const TIMEOUT_MS = positiveInt('--timeout', opts.timeout) * 1000;
const MODES = { normal: ['normal'], off: ['off'], both: ['normal', 'off'] }[opts.durability];
if (!MODES) {
  console.error(`bench: --durability must be normal, off or both, got ${JSON.stringify(opts.durability)}`);
  process.exit(2);
}
const SETTINGS = Object.fromEntries(
  opts.setting.map((text) => {
    const m = /^([a-z_][a-z0-9_.]*)=(\S+)$/i.exec(text);
    if (!m) {
      console.error(`bench: --setting must be name=value with no spaces, got ${JSON.stringify(text)}`);
      process.exit(2);
    }
    return [m[1], m[2]];
  }),
);
const MODE_TITLE = { normal: 'normal durability (fsync on)', off: 'fsync=off' };

requireBuilt(root, 'bench:workers');
if (!existsSync('/proc/self/stat')) {
  console.error('bench: needs Linux: the CPU figures come from /proc');
  process.exit(2);
}
const tmpRoot = existingDir('--tmpdir', opts.tmpdir);
const pgRoot = existingDir('--pgdir', opts.pgdir);
const CORES = os.cpus().length;

// ---------------------------------------------------------------------------------------------
// CPU time from /proc

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/**
 * A process's CPU seconds from /proc/<pid>/stat: its own (utime + stime) and that of the children
 * it has waited for (cutime + cstime). Null once it is gone.
 */
function procCpu(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    comm,
    ownS: (Number(fields[11]) + Number(fields[12])) / CLK_TCK,
    reapedS: (Number(fields[13]) + Number(fields[14])) / CLK_TCK,
  };
}

function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Every CPU second the PostgreSQL server has used so far: the postmaster's own, the backends it
 * has reaped (each connection is a process that exits with it), and every live child's. Exact to
 * the clock tick, with no sampling: a backend's time moves into the postmaster's reaped time when
 * it exits.
 */
function serverCpuS(postmasterPid) {
  const pm = procCpu(postmasterPid);
  if (!pm) throw new Error(`the PostgreSQL server (pid ${postmasterPid}) is gone`);
  let total = pm.ownS + pm.reapedS;
  for (const child of childPids(postmasterPid)) {
    const c = procCpu(child);
    if (c) total += c.ownS + c.reapedS;
  }
  return total;
}

/**
 * The CPU seconds of this process's reaped children: the workers (or the local run) with everything
 * under them (the native launcher, the `/bin/sh -c true` tasks), since each waits for its children.
 */
const reapedCpuS = () => procCpu(process.pid).reapedS;

/**
 * CPU seconds the whole machine has been busy so far (user, nice, system, irq, softirq over every
 * core, from /proc/stat), and those the hypervisor took from this VM (steal): what the measured
 * processes did not use of the first, and all of the second, went to something else.
 */
function machineCpu() {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal = 0] = fields;
  return { busyS: (user + nice + system + irq + softirq) / CLK_TCK, stealS: steal / CLK_TCK };
}

/** What else the machine did between two machineCpu() readings, as shares of wall × cores. */
function neighbours(before, after, ownCpuS, wallS) {
  return {
    othersShare: Math.max(0, after.busyS - before.busyS - ownCpuS) / (wallS * CORES),
    stealShare: (after.stealS - before.stealS) / (wallS * CORES),
  };
}

/**
 * Samples the own CPU of each watched process and of its native launcher every 200 ms, to split
 * the exact total into Node, launcher and the rest (the tasks, process creation). The last sample
 * before a process exits is kept, so up to 200 ms of each is missed.
 */
function cpuSplitSampler(pids) {
  const seen = new Map();
  const sample = () => {
    for (const pid of pids) {
      const own = procCpu(pid);
      if (!own) continue;
      seen.set(pid, { role: 'node', s: own.ownS });
      for (const child of childPids(pid)) {
        const c = procCpu(child);
        if (c?.comm === 'fanout-launcher') seen.set(child, { role: 'launcher', s: c.ownS });
      }
    }
  };
  sample();
  const timer = setInterval(sample, 200);
  return () => {
    clearInterval(timer);
    const split = { nodeS: 0, launcherS: 0 };
    for (const { role, s } of seen.values()) split[role === 'node' ? 'nodeS' : 'launcherS'] += s;
    return split;
  };
}

// ---------------------------------------------------------------------------------------------
// Processes: each in its own process group, killed by that group's id when a run goes wrong

const live = new Set();

function start(argv, { cwd, capture = false }) {
  const child = spawn(argv[0], argv.slice(1), { cwd, detached: true, stdio: ['ignore', capture ? 'pipe' : 'ignore', 'pipe'] });
  live.add(child);
  const stdout = [];
  const stderr = [];
  child.stdout?.on('data', (b) => stdout.push(b));
  child.stderr.on('data', (b) => stderr.push(b));
  const done = new Promise((resolveDone, rejectDone) => {
    child.once('error', rejectDone);
    child.once('exit', (code, signal) => {
      const exitedAt = process.hrtime.bigint();
      child.once('close', () => {
        live.delete(child);
        resolveDone({ code, signal, exitedAt, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
      });
    });
  });
  return { pid: child.pid, done };
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {}
}

function killAll() {
  for (const child of live) killGroup(child.pid, 'SIGKILL');
}

/** All of `runs` finished, or every one of them killed after the timeout. */
async function within(runs, what) {
  let timer;
  const timedOut = new Promise((_, rejectTimeout) => {
    timer = setTimeout(() => {
      for (const r of runs) killGroup(r.pid, 'SIGKILL');
      rejectTimeout(new Error(`${what} took longer than --timeout ${TIMEOUT_MS / 1000} s; killed`));
    }, TIMEOUT_MS);
  });
  try {
    return await Promise.race([Promise.all(runs.map((r) => r.done)), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

function failed(what, r, dir) {
  const tail = (r.stderr || '').trim().split('\n').slice(-15).join('\n');
  return new Error(`${what} failed (exit ${r.code}${r.signal ? `, signal ${r.signal}` : ''}) in ${dir}\n${tail}`);
}

const fanout = (...args) => [process.execPath, fanoutBin, ...args];

// ---------------------------------------------------------------------------------------------
// Temp folders, job files

// Deleted only at the very end: deleting tens of thousands of files on a VM disk slows whatever
// runs next, which would charge one scenario for another's cleanup.
const toDelete = [];
function freshDir(tag) {
  const dir = mkdtempSync(join(tmpRoot, `fanout-bench-${tag}-`));
  toDelete.push(dir);
  return dir;
}
function deleteAll() {
  for (const dir of toDelete.splice(0)) {
    if (opts.keep) log(`  kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/** The same job for both backends; attempts and outputs under the run's folder. */
function writeJob(dir, n) {
  const lines = ['command: "true"', 'tasks:', '  each:'];
  for (let i = 1; i <= n; i++) lines.push(`    - ${i}`);
  lines.push(`workdir: ${JSON.stringify(join(dir, 'work'))}`, `outdir: ${JSON.stringify(join(dir, 'out'))}`, '');
  writeFileSync(join(dir, 'job.yaml'), lines.join('\n'));
}

/** Flush dirty pages before a timed run so the previous run's writeback is not charged to it. */
function settle() {
  spawnSync('sync', { stdio: 'ignore' });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Scenarios

const nFor = (workers) => FIXED_N ?? (workers === 1 ? 2000 : 5000);

const SCENARIOS = MODES.flatMap((mode) =>
  WORKER_COUNTS.map((workers) => ({
    key: `${mode}-w${workers}`,
    kind: 'workers',
    mode,
    workers,
    n: nFor(workers),
    label: `${workers} worker${workers === 1 ? '' : 's'} × --cpus ${CPUS}${MODES.length > 1 ? `, ${mode === 'off' ? 'fsync=off' : 'fsync on'}` : ''}`,
  })),
);
// The local reference has no server: one per (N, concurrency), whatever the durability modes.
const LOCALS = [
  ...new Map(
    WORKER_COUNTS.map((workers) => {
      const concurrency = Math.min(workers * CPUS, LOCAL_MAX);
      const n = nFor(workers);
      return [`local-n${n}-c${concurrency}`, { key: `local-n${n}-c${concurrency}`, kind: 'local', n, concurrency, label: `local --concurrency ${concurrency} (SQLite)` }];
    }),
  ).values(),
];
const localFor = (sc) => LOCALS.find((l) => l.n === sc.n && l.concurrency === Math.min(sc.workers * CPUS, LOCAL_MAX));

const clusters = {};

async function runWorkers(sc, tag, n = sc.n) {
  const cluster = clusters[sc.mode];
  const dir = freshDir(`w${sc.workers}`);
  writeJob(dir, n);
  const dbName = `bench_${tag}`;
  const url = await createDatabase(cluster.url, dbName);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const [queued] = await within(
      [start(fanout('run', 'job.yaml', '--backend', 'workers', '--detach', '--store', url, '--home', join(dir, 'home')), { cwd: dir })],
      'fanout run --detach',
    );
    if (queued.code !== 0) throw failed('fanout run --detach', queued, dir);
    // What queueing wrote is on disk before the clock starts, so no checkpoint lands in the run for it.
    await cluster.admin.query('CHECKPOINT');
    if (opts.statements) await cluster.admin.query('SELECT pg_stat_statements_reset()');
    settle();

    const postmaster = cluster.serverPid();
    const serverBefore = serverCpuS(postmaster);
    const reapedBefore = reapedCpuS();
    const machineBefore = machineCpu();
    const started = process.hrtime.bigint();
    const workers = [];
    for (let i = 0; i < sc.workers; i++) {
      workers.push(
        start(fanout('worker', '--until-empty', '--cpus', String(CPUS), '--store', url, '--home', join(dir, `home-${i}`), '--scratch', join(dir, 'scratch')), {
          cwd: dir,
        }),
      );
    }
    const stopSampling = cpuSplitSampler(workers.map((w) => w.pid));
    let exits;
    let cpuSplit;
    try {
      exits = await within(workers, `${sc.workers} workers`);
    } finally {
      cpuSplit = stopSampling();
    }
    const wallS = Number(exits.reduce((last, e) => (e.exitedAt > last ? e.exitedAt : last), started) - started) / 1e9;
    const workersCpuS = reapedCpuS() - reapedBefore;
    const machineAfter = machineCpu();
    // The workers' connections end as they exit; give their backends a moment to be reaped.
    await sleep(300);
    const serverS = serverCpuS(postmaster) - serverBefore;
    // Nearly all of the server's CPU fell inside the wall (it was idle before and after).
    const others = neighbours(machineBefore, machineAfter, workersCpuS + serverS, wallS);
    for (const e of exits) if (e.code !== 0) throw failed('fanout worker', e, dir);

    const [q] = (
      await db.query(`
        SELECT count(*)::int AS attempts, count(DISTINCT worker)::int AS workers,
          min(launched_at)::float8 AS first_launch, max(ended_at)::float8 AS last_end,
          count(*) FILTER (WHERE reason = 'ok')::int AS ok
        FROM attempts WHERE idx >= 0`)
    ).rows;
    const [run] = (await db.query(`SELECT state FROM runs ORDER BY id DESC LIMIT 1`)).rows;
    if (run?.state !== 'succeeded' || q.ok !== n || q.attempts !== n) {
      throw new Error(`the workers' run did not succeed with ${n} tasks in ${dir}: run ${run?.state}, ${q.ok} ok of ${q.attempts} attempts`);
    }
    const perWorker = (await db.query(`SELECT count(*)::int AS n FROM attempts WHERE idx >= 0 GROUP BY worker ORDER BY 1 DESC`)).rows.map((r) => r.n);
    const queueS = (q.last_end - q.first_launch) / 1000;
    const statements = opts.statements ? await topStatements(cluster, dbName, n) : null;
    return {
      n,
      wallS,
      queueS,
      tasksPerS: n / queueS,
      workersCpuS,
      nodeCpuS: cpuSplit.nodeS,
      launcherCpuS: cpuSplit.launcherS,
      serverCpuS: serverS,
      storeShareOfMachine: serverS / (wallS * CORES),
      storeShareOfUsed: serverS / (serverS + workersCpuS),
      ...others,
      workersUsed: q.workers,
      tasksPerWorker: perWorker,
      statements,
    };
  } finally {
    await db.end();
    await cluster.admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(dbName)} WITH (FORCE)`);
  }
}

async function topStatements(cluster, dbName, n) {
  const { rows } = await cluster.admin.query(
    `SELECT s.query, s.calls::int AS calls, s.total_exec_time AS ms, s.rows::int AS rows,
       s.plans::int AS plans, s.total_plan_time AS plan_ms
     FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
     WHERE d.datname = $1 ORDER BY s.calls DESC, s.total_exec_time DESC LIMIT 25`,
    [dbName],
  );
  return rows.map((r) => ({
    statement: r.query.replace(/\s+/g, ' ').trim().slice(0, 90),
    calls: r.calls,
    callsPerTask: r.calls / n,
    totalMs: r.ms,
    meanMs: r.ms / r.calls,
    rows: r.rows,
    plans: r.plans,
    planMs: r.plan_ms,
  }));
}

async function runLocal(sc, n = sc.n) {
  const dir = freshDir(`local-c${sc.concurrency}`);
  writeJob(dir, n);
  settle();
  const reapedBefore = reapedCpuS();
  const machineBefore = machineCpu();
  const started = process.hrtime.bigint();
  const home = join(dir, 'home');
  const run = start(fanout('run', 'job.yaml', '--home', home, '--fresh', '--concurrency', String(sc.concurrency), '--cpus', String(sc.concurrency), '--json'), {
    cwd: dir,
    capture: true,
  });
  const stopSampling = cpuSplitSampler([run.pid]);
  let r;
  let cpuSplit;
  try {
    [r] = await within([run], 'fanout run (local)');
  } finally {
    cpuSplit = stopSampling();
  }
  const wallS = Number(r.exitedAt - started) / 1e9;
  const cpuS = reapedCpuS() - reapedBefore;
  const others = neighbours(machineBefore, machineCpu(), cpuS, wallS);
  if (r.code !== 0) throw failed('fanout run (local)', r, dir);
  let status;
  try {
    status = JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    throw new Error(`fanout printed no JSON status in ${dir}:\n${r.stdout.slice(-2000)}`);
  }
  if (status.state !== 'succeeded' || status.counts?.succeeded !== n) throw new Error(`the local run did not succeed in ${dir}: ${JSON.stringify(status)}`);
  const Database = require('better-sqlite3');
  const db = new Database(join(home, 'state.db'), { readonly: true });
  const q = db.prepare('SELECT min(launched_at) AS first_launch, max(ended_at) AS last_end FROM attempts').get();
  db.close();
  const queueS = (q.last_end - q.first_launch) / 1000;
  return {
    n,
    wallS,
    queueS,
    tasksPerS: n / queueS,
    inRunS: status.createdAt && status.endedAt ? (Date.parse(status.endedAt) - Date.parse(status.createdAt)) / 1000 : null,
    cpuS,
    nodeCpuS: cpuSplit.nodeS,
    launcherCpuS: cpuSplit.launcherS,
    ...others,
  };
}

// ---------------------------------------------------------------------------------------------
// Main

async function startClusters() {
  for (const mode of MODES) {
    log(`  starting a throwaway PostgreSQL (${MODE_TITLE[mode]}) ...`);
    const cluster = await startThrowawayPostgres({
      fsync: mode !== 'off',
      parent: pgRoot,
      // Each worker's pool holds up to 4 connections.
      maxConnections: Math.max(200, Math.max(...WORKER_COUNTS) * 5 + 20),
      settings: {
        ...(opts.statements ? { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all', 'pg_stat_statements.track_planning': 'on' } : {}),
        ...SETTINGS,
      },
    });
    clusters[mode] = cluster;
    cluster.admin = new pg.Client({ connectionString: cluster.url });
    await cluster.admin.connect();
    if (opts.statements) await cluster.admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const show = async (name) => (await cluster.admin.query(`SHOW ${name}`)).rows[0][name];
    cluster.facts = {
      version: await show('server_version'),
      fsync: await show('fsync'),
      synchronousCommit: await show('synchronous_commit'),
      walSyncMethod: await show('wal_sync_method'),
      sharedBuffers: await show('shared_buffers'),
      settings: SETTINGS,
      folder: cluster.folder,
      filesystem: filesystemOf(cluster.folder),
    };
  }
}

async function stopClusters() {
  for (const [mode, cluster] of Object.entries(clusters)) {
    await cluster.admin?.end().catch(() => {});
    const pid = cluster.serverPid();
    await cluster.stop();
    // pg_ctl returns once the pid file is gone, a moment before the process; should the server
    // still run after that, end it by its pid.
    if (pid !== null && !(await gone(pid, 5000))) {
      log(`  the ${mode} cluster's server (pid ${pid}) outlived pg_ctl stop by 5 s; killing it`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    delete clusters[mode];
  }
}

/** Whether the process has exited (a zombie has) within `ms`. */
async function gone(pid, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    let state;
    try {
      state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    } catch {
      return true;
    }
    if (state === 'Z' || state === 'X') return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}

function filesystemOf(path) {
  const r = spawnSync('findmnt', ['-no', 'FSTYPE,SOURCE,TARGET', '-T', path], { encoding: 'utf8' });
  const [type, device, mount] = (r.stdout ?? '').trim().split(/\s+/);
  return type ? `${type} (${device} on ${mount})` : 'unknown';
}

async function main() {
  const date = new Date().toISOString();
  log(
    `fanout workers bench: workers ${WORKER_COUNTS.join(',')}, --cpus ${CPUS}, reps ${REPS}, durability ${opts.durability}${opts.statements ? ', pg_stat_statements on' : ''}`,
  );
  await startClusters();

  // Warm-up (not counted): page cache for node_modules and the server, each backend once.
  for (const sc of [SCENARIOS[0], LOCALS[0]]) {
    log(`  warm-up: ${sc.label}, 50 tasks`);
    if (sc.kind === 'workers') await runWorkers(sc, 'warmup', 50);
    else await runLocal(sc, 50);
  }

  const units = [...SCENARIOS, ...LOCALS];
  const samples = Object.fromEntries(units.map((u) => [u.key, []]));
  for (let rep = 0; rep < REPS; rep++) {
    // Rotate the order each repetition so no scenario always runs first or last.
    const order = units.map((_, i) => units[(i + rep) % units.length]);
    for (const unit of order) {
      const r = unit.kind === 'workers' ? await runWorkers(unit, `${unit.key}_r${rep}`.replace(/-/g, '_')) : await runLocal(unit);
      samples[unit.key].push(r);
      log(
        `  rep ${rep + 1}/${REPS}  ${unit.label.padEnd(34)} N=${String(unit.n).padEnd(5)} ${f(r.tasksPerS, 0).padStart(5)} tasks/s  wall ${f(r.wallS, 2)} s` +
          (unit.kind === 'workers' ? `  server cpu ${f(r.serverCpuS, 2)} s, workers cpu ${f(r.workersCpuS, 2)} s` : `  cpu ${f(r.cpuS, 2)} s`) +
          `  other processes ${f(r.othersShare * 100, 0)}%, steal ${f(r.stealShare * 100, 0)}% of the machine`,
      );
    }
  }

  const med = (runs, pick) => {
    const xs = runs.map(pick).filter((x) => x != null && Number.isFinite(x));
    return xs.length ? median(xs) : null;
  };
  const results = {};
  for (const unit of units) {
    const runs = samples[unit.key];
    const row = {
      label: unit.label,
      kind: unit.kind,
      n: unit.n,
      tasksPerS: med(runs, (r) => r.tasksPerS),
      tasksPerSRuns: runs.map((r) => +r.tasksPerS.toFixed(1)),
      wallS: med(runs, (r) => r.wallS),
      wallRunsS: runs.map((r) => +r.wallS.toFixed(3)),
      queueS: med(runs, (r) => r.queueS),
      nodeCpuS: med(runs, (r) => r.nodeCpuS),
      launcherCpuS: med(runs, (r) => r.launcherCpuS),
      othersShare: med(runs, (r) => r.othersShare),
      othersShareMax: Math.max(...runs.map((r) => r.othersShare)),
      stealShareMax: Math.max(...runs.map((r) => r.stealShare)),
    };
    row.msPerTask = (row.wallS * 1000) / unit.n;
    row.queueMsPerTask = (row.queueS * 1000) / unit.n;
    if (unit.kind === 'workers') {
      Object.assign(row, {
        mode: unit.mode,
        workers: unit.workers,
        cpus: CPUS,
        workersCpuS: med(runs, (r) => r.workersCpuS),
        serverCpuS: med(runs, (r) => r.serverCpuS),
        storeShareOfMachine: med(runs, (r) => r.storeShareOfMachine),
        storeShareOfUsed: med(runs, (r) => r.storeShareOfUsed),
        workersUsed: runs.map((r) => r.workersUsed),
        tasksPerWorker: runs.map((r) => r.tasksPerWorker),
        statements: opts.statements ? runs.at(-1).statements : undefined,
        local: localFor(unit).key,
      });
    } else {
      Object.assign(row, {
        concurrency: unit.concurrency,
        inRunS: med(runs, (r) => r.inRunS),
        cpuS: med(runs, (r) => r.cpuS),
      });
    }
    results[unit.key] = row;
  }
  for (const sc of SCENARIOS) {
    const row = results[sc.key];
    const local = results[row.local];
    row.vsLocal = row.msPerTask / local.msPerTask;
    row.queueVsLocal = row.queueMsPerTask / local.queueMsPerTask;
  }

  // ---- print
  const p = (s = '') => process.stdout.write(s + '\n');
  const cpus = os.cpus();
  const machine = {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuCount: CORES,
    totalMemoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    tmpdir: tmpRoot,
    tmpFilesystem: filesystemOf(tmpRoot),
  };
  const ratio = (x) => (x == null || !Number.isFinite(x) ? '-' : `${x.toFixed(2)}x`);
  const pct = (x) => (x == null || !Number.isFinite(x) ? '-' : `${(x * 100).toFixed(0)}%`);
  p();
  p(`fanout pull-worker bench — ${date}`);
  p(`machine: ${machine.cpuModel} × ${machine.cpuCount} CPUs, ${machine.totalMemoryGiB} GiB RAM, ${machine.os}, node ${machine.node}`);
  for (const [mode, c] of Object.entries(clusters)) {
    p(
      `store (${MODE_TITLE[mode]}): PostgreSQL ${c.facts.version}, fsync=${c.facts.fsync}, synchronous_commit=${c.facts.synchronousCommit}, ` +
        `wal_sync_method=${c.facts.walSyncMethod}, shared_buffers=${c.facts.sharedBuffers}` +
        `${Object.entries(SETTINGS)
          .map(([name, value]) => `, ${name}=${value} (--setting)`)
          .join('')}; data on ${c.facts.filesystem}`,
    );
  }
  p(`temp folders: ${machine.tmpdir} on ${machine.tmpFilesystem}`);
  for (const [mode, c] of Object.entries(clusters)) {
    if (mode === 'normal' && c.facts.filesystem.startsWith('tmpfs'))
      p('note: the cluster is on tmpfs, where an fsync costs nothing: normal durability is not what this measured');
  }
  p(
    `tasks: \`true\`; each worker --cpus ${CPUS}; each figure is the median of ${REPS} interleaved runs, each on a fresh database and temp folder${opts.statements ? '; pg_stat_statements loaded' : ''}`,
  );
  p();
  p('| scenario | N | tasks/s | wall s | ms/task | vs local | store CPU ÷ machine | store CPU ÷ used | worker CPU s | server CPU s |');
  p('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const sc of SCENARIOS) {
    const r = results[sc.key];
    p(
      `| ${r.label} | ${r.n} | ${f(r.tasksPerS, 0)} | ${f(r.wallS, 2)} | ${f(r.msPerTask, 2)} | ${ratio(r.vsLocal)} | ` +
        `${pct(r.storeShareOfMachine)} | ${pct(r.storeShareOfUsed)} | ${f(r.workersCpuS, 1)} | ${f(r.serverCpuS, 1)} |`,
    );
  }
  for (const l of LOCALS) {
    const r = results[l.key];
    p(`| ${r.label} | ${r.n} | ${f(r.tasksPerS, 0)} | ${f(r.wallS, 2)} | ${f(r.msPerTask, 2)} |  |  |  | ${f(r.cpuS, 1)} |  |`);
  }
  p();
  for (const mode of MODES) {
    const four = results[`${mode}-w4`];
    if (four) {
      p(`4 workers: ${f(four.tasksPerS, 0)} tasks/s (goal ≥ 500): ${four.tasksPerS >= 500 ? 'met' : 'NOT met'}${MODES.length > 1 ? ` [${MODE_TITLE[mode]}]` : ''}`);
    }
  }
  // CPU the measured processes did not use went to something else on the machine: then the
  // figures say as much about the neighbours as about fanout.
  const disturbed = units.map((u) => results[u.key]).filter((r) => r.othersShareMax > 0.05 || r.stealShareMax > 0.05);
  if (disturbed.length > 0) {
    p(
      `disturbed: other processes used up to ${pct(Math.max(...disturbed.map((r) => r.othersShareMax)))} of the machine ` +
        `(steal up to ${pct(Math.max(...disturbed.map((r) => r.stealShareMax)))}) during ${disturbed.map((r) => r.label).join('; ')} ` +
        '(per run in the JSON: othersShare, stealShare); run again when the machine is quiet',
    );
  }
  p();
  p('per scenario (medians):');
  for (const sc of SCENARIOS) {
    const r = results[sc.key];
    const l = results[r.local];
    p(
      `  ${r.label}: queue ${f(r.queueS, 2)} s = ${f(r.queueMsPerTask, 2)} ms/task (local in its queue: ${f(l.queueMsPerTask, 2)} ms/task, ${ratio(r.queueVsLocal)}); ` +
        `worker CPU ${f(r.workersCpuS, 1)} s = node ${f(r.nodeCpuS, 1)} + launcher ${f(r.launcherCpuS, 1)} + tasks and the rest ${f(r.workersCpuS - r.nodeCpuS - r.launcherCpuS, 1)}; ` +
        `${f((r.workersCpuS * 1000) / r.n, 2)} ms worker CPU and ${f((r.serverCpuS * 1000) / r.n, 2)} ms server CPU per task; tasks per worker ${JSON.stringify(r.tasksPerWorker.at(-1))}`,
    );
  }
  for (const l of LOCALS) {
    const r = results[l.key];
    p(
      `  ${r.label}, N=${r.n}: in-run ${f(r.inRunS, 2)} s; CPU ${f(r.cpuS, 1)} s = node ${f(r.nodeCpuS, 1)} + launcher ${f(r.launcherCpuS, 1)} + tasks and the rest ${f(r.cpuS - r.nodeCpuS - r.launcherCpuS, 1)}`,
    );
  }
  p();
  p('  tasks/s = N / (last attempt ended − first attempt launched), read from the store (PostgreSQL for the workers, state.db for local);');
  p('  wall s = workers: from starting them until the last exited; local: `fanout run` from spawn to exit; ms/task = wall / N;');
  p('  vs local = workers ms/task ÷ local ms/task on the same N (above 1: the workers are slower);');
  p(`  store CPU ÷ machine = server CPU ÷ (wall × ${CORES} cores); store CPU ÷ used = server CPU ÷ (server + workers CPU);`);
  p('  server CPU = every PostgreSQL process (postmaster, backends, background) from /proc; worker CPU = the workers and');
  p('  everything under them (native launcher, tasks), from the CPU time of the children this bench reaped.');
  if (opts.statements) {
    for (const sc of SCENARIOS) {
      const st = results[sc.key].statements;
      if (!st) continue;
      p();
      p(`statements, ${results[sc.key].label}, last repetition (pg_stat_statements): calls, calls per task, mean ms, total ms, plans, planning ms`);
      for (const s of st) {
        p(
          `  ${String(s.calls).padStart(7)}  ${f(s.callsPerTask, 2).padStart(6)}  ${f(s.meanMs, 3).padStart(8)}  ${f(s.totalMs, 0).padStart(7)}  ` +
            `${String(s.plans).padStart(6)}  ${f(s.planMs, 0).padStart(6)}  ${s.statement}`,
        );
      }
    }
  }

  const out = resolve(opts.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify(
      {
        date,
        machine,
        stores: Object.fromEntries(Object.entries(clusters).map(([mode, c]) => [mode, c.facts])),
        options: {
          workers: WORKER_COUNTS,
          n: FIXED_N,
          cpus: CPUS,
          reps: REPS,
          durability: opts.durability,
          localMax: LOCAL_MAX,
          statements: opts.statements,
          settings: SETTINGS,
        },
        results,
        runs: samples,
      },
      null,
      2,
    ) + '\n',
  );
  log(`  JSON: ${out}`);
}

let exitCode = 0;
const interrupted = (signal) => {
  log(`bench: ${signal}: stopping what it started`);
  killAll();
  stopClusters()
    .catch(() => {})
    .finally(() => {
      deleteAll();
      process.exit(130);
    });
};
process.once('SIGINT', interrupted);
process.once('SIGTERM', interrupted);
try {
  await main();
} catch (error) {
  console.error(`bench: ${error.stack ?? error}`);
  exitCode = 1;
} finally {
  killAll();
  await stopClusters().catch((error) => log(`bench: stopping PostgreSQL: ${error.message}`));
  deleteAll();
}
process.exit(exitCode);
