#!/usr/bin/env node
// fanout benchmark: per-task overhead of fanout against GNU parallel and xargs, side by side.
// Run with `npm run bench` (builds first), or `node bench/run.mjs [options]` after a build.
// See bench/README.md for what is measured and what each column means.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { benchOptions, existingDir, f, log, median, positiveInt, requireBuilt } from './common.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = resolve(benchDir, '..');
const fanoutBin = join(root, 'bin', 'fanout.js');
const probe = join(benchDir, 'store-probe.mjs');
const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------
// Options

const HELP = `Usage: node bench/run.mjs [options]

  --n <count>          tasks per scenario (default: env BENCH_N or 2000)
  --reps <count>       timed runs of each tool per scenario, interleaved; the median counts (default 5)
  --concurrency <n>    tasks at once for every tool (default 2)
  --skip-scale         skip the large scale run
  --scale-n <count>    tasks in the scale run (default: env BENCH_SCALE_N or 100000)
  --profile            also CPU-profile one fanout run of \`true\` x N (node --cpu-prof) and list the
                       top self-time functions
  --no-parallel-default  skip the informational GNU parallel run with its default shell ($SHELL)
  --out <file>         where to write the JSON (default bench/out/latest.json)
  --tmpdir <dir>       where the fresh temp folders go (default: os.tmpdir(), i.e. $TMPDIR or /tmp);
                       e.g. /dev/shm to take the disk's metadata cost out of every tool
  --keep               keep the temp folders (printed) instead of deleting them
  -h, --help           this text
`;

const opts = benchOptions(
  {
    n: { type: 'string' },
    reps: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '2' },
    'skip-scale': { type: 'boolean', default: false },
    'scale-n': { type: 'string' },
    profile: { type: 'boolean', default: false },
    'no-parallel-default': { type: 'boolean', default: false },
    out: { type: 'string', default: join(benchDir, 'out', 'latest.json') },
    tmpdir: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
  HELP,
);

const N = positiveInt('--n', opts.n ?? process.env.BENCH_N ?? '2000');
const REPS = positiveInt('--reps', opts.reps);
const CONCURRENCY = positiveInt('--concurrency', opts.concurrency);
const SCALE_N = positiveInt('--scale-n', opts['scale-n'] ?? process.env.BENCH_SCALE_N ?? '100000');

// ---------------------------------------------------------------------------------------------
// Environment

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function firstLine(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout || r.stderr).split('\n')[0].trim() : null;
}

function filesystemOf(path) {
  // The longest mount point that contains path, from /proc/mounts (Linux only).
  try {
    let best = null;
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [device, mount, type] = line.split(' ');
      if (!mount) continue;
      const m = mount.replace(/\\040/g, ' ');
      if ((path === m || path.startsWith(m.endsWith('/') ? m : m + '/')) && (!best || m.length > best.mount.length)) {
        best = { device, mount: m, type };
      }
    }
    return best ? `${best.type} (${best.device} on ${best.mount})` : 'unknown';
  } catch {
    return 'unknown';
  }
}

requireBuilt(root, 'bench');

const parallelPath = which('parallel');
const timePath = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const tmpRoot = existingDir('--tmpdir', opts.tmpdir);
const cpus = os.cpus();

const machine = {
  cpuModel: cpus[0]?.model ?? 'unknown',
  cpuCount: cpus.length,
  totalMemoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  node: process.version,
  tmpdir: tmpRoot,
  tmpFilesystem: filesystemOf(tmpRoot),
  parallel: parallelPath ? firstLine('parallel', ['--version']) : null,
  xargs: firstLine('xargs', ['--version']),
  sh: `/bin/sh -> ${spawnSync('readlink', ['-f', '/bin/sh'], { encoding: 'utf8' }).stdout?.trim() || '?'}`,
  timeCmd: timePath,
};
const date = new Date().toISOString();

// ---------------------------------------------------------------------------------------------
// Running one measured command

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/**
 * The long-lived processes under pid (not the short tasks): own CPU seconds (utime+stime from
 * /proc/<pid>/stat, children excluded) by command name, as last seen. Linux only; sampled, so
 * up to one interval of CPU at the very end is missed.
 */
function sampleTree(rootPid, seen) {
  const walk = (pid) => {
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return;
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuS = (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
    const prev = seen.get(pid);
    if (!prev || cpuS >= prev.cpuS) seen.set(pid, { comm, cpuS });
    let children = '';
    try {
      children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    } catch {}
    for (const c of children.split(' ').filter(Boolean)) if (c !== String(pid)) walk(Number(c));
  };
  walk(rootPid);
}

/**
 * Runs cmd with args, timing the wall from just before spawn to its exit with hrtime. When
 * /usr/bin/time is there the command runs under it (`-f '%U %S %M'`) to get the CPU seconds
 * (user+sys of the command and all its reaped descendants, so tasks included) and the max RSS.
 */
async function measure({ cmd, args, cwd, env = {}, unset = [], stdinFile, captureStdout = false, pollHwm = false, pollTree = false }) {
  const timeFile = timePath ? join(cwd, `.bench-time-${process.hrtime.bigint()}`) : null;
  const argv = timePath ? [timePath, '-f', '%U %S %M', '-o', timeFile, cmd, ...args] : [cmd, ...args];
  const stdinFd = stdinFile ? openSync(stdinFile, 'r') : 'ignore';
  const stdout = [];
  const stderr = [];
  let hwmKiB = 0;
  const childEnv = { ...process.env, ...env };
  for (const k of unset) delete childEnv[k];
  settle();
  const started = process.hrtime.bigint();
  const child = spawn(argv[0], argv.slice(1), {
    cwd,
    env: childEnv,
    stdio: [stdinFd, captureStdout ? 'pipe' : 'ignore', 'pipe'],
  });
  const closed = new Promise((r) => child.once('close', r));
  let exitedAt = null;
  const exited = new Promise((resolveExit, rejectExit) => {
    child.on('error', rejectExit);
    child.on('exit', (code, signal) => {
      exitedAt = process.hrtime.bigint();
      resolveExit({ code, signal });
    });
  });
  child.stdout?.on('data', (b) => stdout.push(b));
  child.stderr.on('data', (b) => stderr.push(b));
  let poller = null;
  if (pollHwm) {
    // Without /usr/bin/time: VmHWM of the process, re-read until it exits (the high-water mark
    // only grows, so the last successful read is the peak up to a few hundred ms before exit).
    const readHwm = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) hwmKiB = Math.max(hwmKiB, Number(m[1]));
      } catch {}
    };
    poller = setInterval(readHwm, 100);
  }
  const tree = new Map();
  const treePoller = pollTree ? setInterval(() => sampleTree(child.pid, tree), 200) : null;
  const { code, signal } = await exited;
  if (poller) clearInterval(poller);
  if (treePoller) clearInterval(treePoller);
  await closed;
  if (typeof stdinFd === 'number') closeSync(stdinFd);
  const wallS = Number(exitedAt - started) / 1e9;
  let cpuS = null;
  let maxRssKiB = pollHwm ? hwmKiB || null : null;
  if (timeFile && existsSync(timeFile)) {
    const text = readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '';
    const [u, s, m] = text.split(/\s+/).map(Number);
    if (Number.isFinite(u) && Number.isFinite(s)) cpuS = +(u + s).toFixed(3);
    if (Number.isFinite(m)) maxRssKiB = m;
    rmSync(timeFile, { force: true });
  }
  const cpuByCommand = {};
  for (const { comm, cpuS: c } of tree.values()) {
    // Only long-lived processes; the tasks come and go between samples.
    if (c > 0.05) cpuByCommand[comm] = (cpuByCommand[comm] ?? 0) + c;
  }
  return {
    code,
    signal,
    wallS,
    cpuByCommand: pollTree ? cpuByCommand : null,
    cpuS,
    maxRssKiB,
    stdout: Buffer.concat(stdout).toString('utf8'),
    stderr: Buffer.concat(stderr).toString('utf8'),
  };
}

function fail(what, r, dir) {
  const tail = (r.stderr || '').trim().split('\n').slice(-15).join('\n');
  throw new Error(`${what} failed (exit ${r.code}${r.signal ? `, signal ${r.signal}` : ''}) in ${dir}\n${tail}`);
}

function countResultFiles(outDir, n) {
  let found = 0;
  for (let i = 1; i <= n; i++) if (existsSync(join(outDir, String(i), 'result.txt'))) found++;
  return found;
}

// ---------------------------------------------------------------------------------------------
// Tools and scenarios

const SCENARIOS = {
  true: {
    title: '`true`',
    fanoutCommand: 'true',
    shellCommand: 'true',
    writesFiles: false,
  },
  file: {
    title: 'write 1 small file',
    fanoutCommand: 'echo {{ item }} > {{ out }}/result.txt',
    shellCommand: 'mkdir -p out/{} && echo {} > out/{}/result.txt',
    writesFiles: true,
  },
};

function yamlQuote(s) {
  return JSON.stringify(s); // a JSON string is a valid YAML double-quoted scalar
}

function writeJob(dir, command, n) {
  const lines = [`command: ${yamlQuote(command)}`, 'tasks:', '  each:'];
  for (let i = 1; i <= n; i++) lines.push(`    - ${i}`);
  lines.push(`concurrency: ${CONCURRENCY}`, '');
  writeFileSync(join(dir, 'job.yaml'), lines.join('\n'));
}

function writeNumbers(dir, n) {
  let s = '';
  for (let i = 1; i <= n; i++) s += `${i}\n`;
  writeFileSync(join(dir, 'nums'), s);
}

const TOOLS = [
  {
    key: 'xargs',
    label: `xargs -P ${CONCURRENCY}`,
    runs: (sc) => `xargs -P ${CONCURRENCY} -I{} sh -c '${sc.shellCommand}'  (fork+exec /bin/sh -c per task)`,
    available: true,
    async run(sc, dir, n) {
      writeNumbers(dir, n);
      const r = await measure({ cmd: 'xargs', args: ['-P', String(CONCURRENCY), '-I{}', 'sh', '-c', sc.shellCommand], cwd: dir, stdinFile: join(dir, 'nums') });
      if (r.code !== 0) fail('xargs', r, dir);
      if (sc.writesFiles && countResultFiles(join(dir, 'out'), n) !== n) throw new Error(`xargs: missing result files in ${dir}`);
      return { wallS: r.wallS, cpuS: r.cpuS };
    },
  },
  {
    key: 'parallel',
    label: `parallel -j ${CONCURRENCY}`,
    runs: (sc) => `PARALLEL_SHELL=/bin/sh parallel -j ${CONCURRENCY} ${sc.writesFiles ? `'${sc.shellCommand}'` : `-N0 ${sc.shellCommand}`}  (perl; /bin/sh -c per task)`,
    available: Boolean(parallelPath),
    async run(sc, dir, n) {
      writeNumbers(dir, n);
      const args = ['-j', String(CONCURRENCY), ...(sc.writesFiles ? [sc.shellCommand] : ['-N0', sc.shellCommand])];
      const r = await measure({ cmd: 'parallel', args, cwd: dir, env: { PARALLEL_SHELL: '/bin/sh' }, stdinFile: join(dir, 'nums') });
      if (r.code !== 0) fail('parallel', r, dir);
      if (sc.writesFiles && countResultFiles(join(dir, 'out'), n) !== n) throw new Error(`parallel: missing result files in ${dir}`);
      return { wallS: r.wallS, cpuS: r.cpuS };
    },
  },
  {
    key: 'parallel-default',
    label: `parallel -j ${CONCURRENCY} ($SHELL)`,
    info: true,
    runs: (sc) =>
      `parallel -j ${CONCURRENCY} ${sc.writesFiles ? `'${sc.shellCommand}'` : `-N0 ${sc.shellCommand}`}  (its default: $SHELL -c per task, $SHELL=${process.env.SHELL ?? 'unset'}; informational, not used in ratios)`,
    available: Boolean(parallelPath) && !opts['no-parallel-default'],
    async run(sc, dir, n) {
      writeNumbers(dir, n);
      const args = ['-j', String(CONCURRENCY), ...(sc.writesFiles ? [sc.shellCommand] : ['-N0', sc.shellCommand])];
      const r = await measure({ cmd: 'parallel', args, cwd: dir, unset: ['PARALLEL_SHELL'], stdinFile: join(dir, 'nums') });
      if (r.code !== 0) fail('parallel (default shell)', r, dir);
      if (sc.writesFiles && countResultFiles(join(dir, 'out'), n) !== n) throw new Error(`parallel: missing result files in ${dir}`);
      return { wallS: r.wallS, cpuS: r.cpuS };
    },
  },
  {
    key: 'fanout',
    label: `fanout --concurrency ${CONCURRENCY}`,
    runs: (sc) =>
      `node bin/fanout.js run job.yaml --home <tmp> --fresh --concurrency ${CONCURRENCY} --json, command: ${sc.fanoutCommand}  ` +
      '(one Node coordinator + its native launcher; /bin/sh -c per task; SQLite state, per-attempt stdout/stderr logs and result record on)',
    available: true,
    async run(sc, dir, n) {
      writeJob(dir, sc.fanoutCommand, n);
      const r = await runFanout(dir);
      if (sc.writesFiles && countResultFiles(r.status.outdir, n) !== n) throw new Error(`fanout: missing result files in ${r.status.outdir}`);
      return { wallS: r.wallS, cpuS: r.cpuS, inRunS: r.inRunS };
    },
  },
];

async function runFanout(dir, { nodeArgs = [], env = {}, pollHwm = false, pollTree = false } = {}) {
  const r = await measure({
    cmd: process.execPath,
    args: [...nodeArgs, fanoutBin, 'run', 'job.yaml', '--home', join(dir, 'home'), '--fresh', '--concurrency', String(CONCURRENCY), '--json'],
    cwd: dir,
    env,
    captureStdout: true,
    pollHwm,
    pollTree,
  });
  if (r.code !== 0) fail('fanout', r, dir);
  let status;
  try {
    status = JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    throw new Error(`fanout printed no JSON status in ${dir}:\n${r.stdout.slice(-2000)}`);
  }
  const expected = Number(readFileSync(join(dir, 'job.yaml'), 'utf8').match(/^ {4}- /gm)?.length ?? 0);
  if (status.state !== 'succeeded' || status.counts?.succeeded !== expected) {
    throw new Error(`fanout run did not succeed in ${dir}: ${JSON.stringify(status)}`);
  }
  const inRunS = status.createdAt && status.endedAt ? (Date.parse(status.endedAt) - Date.parse(status.createdAt)) / 1000 : null;
  return { ...r, status, inRunS };
}

function freshDir(tag) {
  return mkdtempSync(join(tmpRoot, `fanout-bench-${tag}-`));
}

// Temp folders are deleted only at the very end: on this kind of machine (ext4 mounted with
// `discard`, a VM disk) deleting tens of thousands of files slows the runs that follow it for a
// few seconds, which would charge one tool for another's cleanup.
const toDelete = [];
function cleanup(dir) {
  toDelete.push(dir);
}
function deleteAll() {
  if (opts.keep) {
    for (const dir of toDelete) log(`  kept ${dir}`);
    return;
  }
  for (const dir of toDelete.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Flush dirty pages before a timed run so the previous run's writeback is not charged to it. */
function settle() {
  spawnSync('sync', { stdio: 'ignore' });
}

// ---------------------------------------------------------------------------------------------
// Main

async function runScenarios() {
  const tools = TOOLS.filter((t) => t.available);
  const results = {};
  for (const [scKey, sc] of Object.entries(SCENARIOS)) {
    // Warm-up (not counted): page cache for node_modules, perl modules, sh.
    for (const tool of tools) {
      const dir = freshDir(`warm-${tool.key}`);
      try {
        await tool.run(sc, dir, Math.min(N, 50));
      } finally {
        cleanup(dir);
      }
    }
    const samples = Object.fromEntries(tools.map((t) => [t.key, []]));
    for (let rep = 0; rep < REPS; rep++) {
      // Rotate the order each repetition so no tool always runs first or last.
      const order = tools.map((_, i) => tools[(i + rep) % tools.length]);
      for (const tool of order) {
        const dir = freshDir(`${scKey}-${tool.key}`);
        try {
          const r = await tool.run(sc, dir, N);
          samples[tool.key].push(r);
          log(
            `  ${scKey.padEnd(4)} rep ${rep + 1}/${REPS}  ${tool.label.padEnd(28)} ${r.wallS.toFixed(3)} s` +
              (r.inRunS != null ? `  (in-run ${r.inRunS.toFixed(3)} s)` : ''),
          );
        } finally {
          cleanup(dir);
        }
      }
    }
    results[scKey] = {};
    for (const tool of tools) {
      const runs = samples[tool.key];
      const wallS = median(runs.map((r) => r.wallS));
      const cpu = runs.map((r) => r.cpuS).filter((x) => x != null);
      results[scKey][tool.key] = {
        label: tool.label,
        runs: tool.runs(sc),
        info: Boolean(tool.info),
        wallS,
        wallRunsS: runs.map((r) => +r.wallS.toFixed(4)),
        minWallS: Math.min(...runs.map((r) => r.wallS)),
        msPerTask: (wallS * 1000) / N,
        cpuS: cpu.length ? median(cpu) : null,
      };
      if (tool.key === 'fanout') {
        const inRun = runs.map((r) => r.inRunS).filter((x) => x != null);
        if (inRun.length) {
          const inRunS = median(inRun);
          results[scKey]['fanout-inrun'] = {
            label: 'fanout, in-run only',
            runs: "fanout's own createdAt -> endedAt from its store (excludes Node startup, module loading and opening the store)",
            info: false,
            wallS: inRunS,
            wallRunsS: inRun,
            minWallS: Math.min(...inRun),
            msPerTask: (inRunS * 1000) / N,
            cpuS: null,
          };
        }
      }
    }
    for (const key of ['fanout', 'fanout-inrun']) {
      const row = results[scKey][key];
      if (!row) continue;
      const par = results[scKey].parallel;
      const xa = results[scKey].xargs;
      row.parallelOverFanout = par ? par.wallS / row.wallS : null;
      row.fanoutOverXargs = xa ? row.wallS / xa.wallS : null;
      // The same from the fastest run of each tool: on a noisy machine the least disturbed run.
      row.parallelOverFanoutMin = par ? par.minWallS / row.minWallS : null;
      row.fanoutOverXargsMin = xa ? row.minWallS / xa.minWallS : null;
    }
  }
  return results;
}

async function runScale() {
  const dir = freshDir('scale');
  try {
    log(`  scale: writing a job of ${SCALE_N} tasks (\`true\`) ...`);
    writeJob(dir, 'true', SCALE_N);
    const probeOut = join(dir, 'store-probe.json');
    const r = await runFanout(dir, {
      nodeArgs: ['--import', pathToFileURL(probe).href],
      env: { BENCH_STORE_PROBE_OUT: probeOut },
      pollHwm: !timePath,
      pollTree: true,
    });
    const store = existsSync(probeOut) ? JSON.parse(readFileSync(probeOut, 'utf8')) : null;
    // Cross-check from the store itself.
    const Database = require('better-sqlite3');
    const dbPath = join(dir, 'home', 'state.db');
    const db = new Database(dbPath, { readonly: true });
    const tasksCpuMs = db.prepare('SELECT COALESCE(SUM(cpu_ms), 0) AS ms FROM attempts').get().ms;
    const rows = {
      runs: db.prepare('SELECT COUNT(*) AS n FROM runs').get().n,
      tasks: db.prepare('SELECT COUNT(*) AS n FROM tasks').get().n,
      attempts: db.prepare('SELECT COUNT(*) AS n FROM attempts').get().n,
      cache: db.prepare('SELECT COUNT(*) AS n FROM cache').get().n,
    };
    db.close();
    const size = (p) => (existsSync(p) ? statSync(p).size : 0);
    const dbBytes = size(dbPath) + size(dbPath + '-wal');
    const commits = store ? store.commits + store.autocommits : null;
    const result = {
      n: SCALE_N,
      wallS: r.wallS,
      inRunS: r.inRunS,
      tasksPerS: SCALE_N / r.wallS,
      msPerTask: (r.wallS * 1000) / SCALE_N,
      cpuS: r.cpuS,
      // CPU split: the coordinator's own (probe, exact), the native launcher's own (sampled from
      // /proc every 200 ms), the rest is the tasks (/bin/sh -c true), the time wrapper and process
      // creation charged to the children.
      cpuSplit:
        r.cpuS != null && store?.coordinatorCpuMs != null
          ? (() => {
              const coordinatorS = store.coordinatorCpuMs / 1000;
              const launcherS = r.cpuByCommand?.['fanout-launcher'] ?? null;
              return {
                totalS: r.cpuS,
                coordinatorS,
                launcherS,
                tasksAndRestS: r.cpuS - coordinatorS - (launcherS ?? 0),
                tasksRecordedS: tasksCpuMs / 1000,
              };
            })()
          : null,
      coordinatorPeakRssMiB: store?.coordinatorMaxRssKiB != null ? store.coordinatorMaxRssKiB / 1024 : null,
      peakRssMiB: r.maxRssKiB != null ? r.maxRssKiB / 1024 : null,
      peakRssMethod: timePath
        ? "/usr/bin/time's max RSS of the coordinator (node) process (Linux reports the max over it and its reaped descendants: the native launcher and the `true` tasks, all far smaller)"
        : '/proc/<pid>/status VmHWM of the coordinator (node) process, polled every 100 ms until it exits',
      store: store
        ? {
            rowWrites: store.rowChanges,
            rowWritesPerS: store.rowChanges / r.wallS,
            commits,
            commitsPerS: commits / r.wallS,
            statementRuns: store.runCalls,
            timeInStoreS: store.storeMs / 1000,
            timeInStoreShare: store.storeMs / 1000 / r.wallS,
          }
        : null,
      rows,
      // The brief's "simplest honest figure": attempts rows inserted + task state updates
      // (launched + finished = 2 per task) per wall second, from the row counts.
      simpleWritesPerS: (rows.attempts + 2 * rows.tasks) / r.wallS,
      dbBytes,
    };
    return result;
  } finally {
    cleanup(dir);
  }
}

async function runProfile() {
  const dir = freshDir('profile');
  const profDir = join(benchDir, 'out', 'profile');
  rmSync(profDir, { recursive: true, force: true });
  mkdirSync(profDir, { recursive: true });
  try {
    writeJob(dir, 'true', N);
    const r = await runFanout(dir, { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] });
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) return null;
    const prof = JSON.parse(readFileSync(join(profDir, file), 'utf8'));
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    const self = new Map();
    let total = 0;
    for (let i = 0; i < prof.samples.length; i++) {
      const dt = prof.timeDeltas[i] ?? 0;
      total += dt;
      const node = byId.get(prof.samples[i]);
      const cf = node.callFrame;
      const where = cf.url ? `${cf.url.replace(pathToFileURL(root).href + '/', '').replace(/^node:/, 'node:')}:${cf.lineNumber + 1}` : '';
      const key = `${cf.functionName || '(anonymous)'}${where ? ' ' + where : ''}`;
      self.set(key, (self.get(key) ?? 0) + dt);
    }
    const top = [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 20)
      .map(([fn, us]) => ({ fn, selfMs: us / 1000, share: us / total }));
    return { n: N, wallS: r.wallS, inRunS: r.inRunS, profiledMs: total / 1000, file: join(profDir, file), top };
  } finally {
    cleanup(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

const ratio = (x) => (x == null || !Number.isFinite(x) ? '-' : `${x.toFixed(2)}x`);

function textTable(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i < 2 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const ROW_ORDER = ['xargs', 'parallel', 'parallel-default', 'fanout', 'fanout-inrun'];

function tableRows(results) {
  const rows = [];
  for (const [scKey, byTool] of Object.entries(results)) {
    for (const key of ROW_ORDER) {
      const r = byTool[key];
      if (!r) continue;
      rows.push([
        SCENARIOS[scKey].title,
        r.label,
        f(r.wallS, 3),
        f(r.minWallS, 3),
        f(r.msPerTask, 3),
        f(r.cpuS, 2),
        r.parallelOverFanout !== undefined ? ratio(r.parallelOverFanout) : '',
        r.fanoutOverXargs !== undefined ? ratio(r.fanoutOverXargs) : '',
      ]);
    }
  }
  return rows;
}

function markdownTable(results, scale) {
  const out = [
    `| scenario (N=${N}, ${CONCURRENCY} at once) | tool | wall (s) | ms/task | parallel ÷ fanout (goal ≥ 2) | fanout ÷ xargs (goal ≤ 2) |`,
    '| --- | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const [scKey, byTool] of Object.entries(results)) {
    for (const key of ROW_ORDER) {
      const r = byTool[key];
      if (!r) continue;
      out.push(
        `| ${SCENARIOS[scKey].title} | ${r.label.replace(/\|/g, '\\|')} | ${f(r.wallS, 2)} | ${f(r.msPerTask, 2)} | ` +
          `${r.parallelOverFanout !== undefined ? ratio(r.parallelOverFanout) : ''} | ${r.fanoutOverXargs !== undefined ? ratio(r.fanoutOverXargs) : ''} |`,
      );
    }
  }
  if (scale) {
    out.push('', `| scale run: ${scale.n} × \`true\`, ${CONCURRENCY} at once | value |`, '| --- | ---: |');
    out.push(`| wall (s) | ${f(scale.wallS, 1)} |`);
    out.push(`| tasks/s | ${f(scale.tasksPerS, 0)} |`);
    out.push(`| ms/task | ${f(scale.msPerTask, 2)} |`);
    if (scale.store) {
      out.push(`| store row writes/s | ${f(scale.store.rowWritesPerS, 0)} |`);
      out.push(`| store commits/s | ${f(scale.store.commitsPerS, 0)} |`);
    }
    out.push(`| coordinator peak RSS (MiB) | ${f(scale.peakRssMiB, 0)} |`);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main() {
  log(`fanout bench: N=${N}, reps=${REPS}, concurrency=${CONCURRENCY}, scale=${opts['skip-scale'] ? 'skipped' : SCALE_N}`);
  const notes = [];
  if (!parallelPath) {
    const msg = 'GNU parallel is not installed: its column is skipped. Install it with `apt-get install parallel` (Debian/Ubuntu).';
    notes.push(msg);
    log(msg);
  }
  if (!timePath) {
    const msg = '/usr/bin/time is missing: no CPU seconds column, and peak memory is polled from /proc (install with `apt-get install time`).';
    notes.push(msg);
    log(msg);
  }

  const results = await runScenarios();
  let profile = null;
  if (opts.profile) {
    log('  profiling one fanout run (node --cpu-prof) ...');
    profile = await runProfile();
  }
  let scale = null;
  if (!opts['skip-scale']) {
    log(`  scale run: ${SCALE_N} tasks, this takes a while ...`);
    scale = await runScale();
  }

  // ---- print
  const p = (s = '') => process.stdout.write(s + '\n');
  p();
  p(`fanout bench — ${date}`);
  p(`machine: ${machine.cpuModel} × ${machine.cpuCount} CPUs, ${machine.totalMemoryGiB} GiB RAM, ${machine.os}, node ${machine.node}`);
  p(`temp folders: ${machine.tmpdir} on ${machine.tmpFilesystem}; ${machine.sh}; ${machine.parallel ?? 'GNU parallel: not installed'}; ${machine.xargs}`);
  p(`N=${N} tasks per scenario, ${CONCURRENCY} at once; each figure is the median of ${REPS} interleaved runs, each in a fresh temp folder`);
  p();
  p(textTable(['scenario', 'tool', 'wall s', 'min s', 'ms/task', 'cpu s', 'parallel/fanout', 'fanout/xargs'], tableRows(results)));
  p();
  p('goals (on the whole fanout process wall time):');
  for (const [scKey, byTool] of Object.entries(results)) {
    const fo = byTool.fanout;
    const a = fo.parallelOverFanout;
    const b = fo.fanoutOverXargs;
    p(
      `  ${SCENARIOS[scKey].title}: ${a == null ? 'vs parallel: n/a (not installed)' : `${ratio(a)} faster than parallel (goal >= 2x: ${a >= 2 ? 'met' : 'NOT met'})`}; ` +
        `${ratio(b)} of xargs (goal <= 2x: ${b <= 2 ? 'met' : 'NOT met'}); ` +
        `from the fastest runs: ${ratio(fo.parallelOverFanoutMin)} vs parallel, ${ratio(fo.fanoutOverXargsMin)} of xargs`,
    );
  }
  for (const [scKey, byTool] of Object.entries(results)) {
    const fo = byTool.fanout;
    const inRun = byTool['fanout-inrun'];
    if (inRun)
      p(`  ${SCENARIOS[scKey].title}: fanout outside its run (Node startup, loading modules, planning, opening the store, exit): ${f(fo.wallS - inRun.wallS, 3)} s`);
  }
  p();
  p('what each tool runs per task:');
  for (const [scKey, byTool] of Object.entries(results)) {
    for (const key of ROW_ORDER) if (byTool[key]) p(`  [${scKey}] ${byTool[key].label}: ${byTool[key].runs}`);
  }
  p('  wall s = median of the whole command, spawn to exit (for fanout: Node startup included); min s = fastest run;');
  p('  ms/task = median wall / N;');
  p('  cpu s = user+sys of the command and every process under it, tasks included (/usr/bin/time); ratios from medians.');
  if (profile) {
    p();
    p(`CPU profile of the coordinator (node --cpu-prof), \`true\` × ${N}: wall ${f(profile.wallS, 2)} s, profiled ${f(profile.profiledMs / 1000, 2)} s. Top self time:`);
    for (const t of profile.top.slice(0, 15)) p(`  ${f(t.selfMs, 0).padStart(7)} ms  ${f(t.share * 100, 1).padStart(5)}%  ${t.fn}`);
    p(`  (profile: ${profile.file}; the native launcher and the tasks are separate processes, not in it)`);
  }
  if (scale) {
    p();
    p(`scale run: ${scale.n} × \`true\`, ${CONCURRENCY} at once, fanout only (store probe preloaded, see bench/store-probe.mjs)`);
    p(`  wall ${f(scale.wallS, 1)} s (in-run ${f(scale.inRunS, 1)} s), ${f(scale.tasksPerS, 0)} tasks/s, ${f(scale.msPerTask, 2)} ms/task, cpu ${f(scale.cpuS, 1)} s`);
    if (scale.store) {
      p(
        `  store: ${scale.store.rowWrites} row writes (${f(scale.store.rowWritesPerS, 0)}/s) in ${scale.store.commits} commits (${f(scale.store.commitsPerS, 0)}/s); ` +
          `${f(scale.store.timeInStoreS, 1)} s in SQLite statements (${f(scale.store.timeInStoreShare * 100, 1)}% of wall)`,
      );
    }
    p(
      `  rows in the store: tasks ${scale.rows.tasks}, attempts ${scale.rows.attempts}, cache ${scale.rows.cache}; ` +
        `(attempts + 2 task updates per task) / wall = ${f(scale.simpleWritesPerS, 0)}/s; state.db + WAL ${f(scale.dbBytes / 2 ** 20, 1)} MiB`,
    );
    p(`  coordinator peak RSS: ${f(scale.peakRssMiB, 1)} MiB — ${scale.peakRssMethod}`);
    if (scale.coordinatorPeakRssMiB != null) {
      p(`    cross-check, the coordinator's own getrusage maxrss at exit (probe): ${f(scale.coordinatorPeakRssMiB, 1)} MiB`);
    }
    if (scale.cpuSplit) {
      const c = scale.cpuSplit;
      p(
        `  cpu split (of ${f(c.totalS, 1)} s): coordinator (node) ${f(c.coordinatorS, 1)} s, native launcher ${f(c.launcherS, 1)} s, ` +
          `tasks and the rest ${f(c.tasksAndRestS, 1)} s (the launcher's per-attempt records add up to ${f(c.tasksRecordedS, 1)} s: whole ms, truncated)`,
      );
    }
  }
  for (const n of notes) p(`note: ${n}`);
  p();
  p('markdown (for the README):');
  p();
  p(markdownTable(results, scale));

  const json = { date, machine, n: N, reps: REPS, concurrency: CONCURRENCY, results, scale, profile, notes };
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(json, null, 2) + '\n');
  p();
  p(`JSON written to ${opts.out}`);
}

main()
  .catch((err) => {
    console.error(`bench: ${err.stack ?? err}`);
    process.exitCode = 1;
  })
  .finally(() => {
    if (toDelete.length && !opts.keep) log(`  deleting ${toDelete.length} temp folders ...`);
    deleteAll();
  });
