#!/usr/bin/env node
// fanout on SLURM against a hand-written array job: wall time from submit until the last task
// is done, and how many scheduler commands each makes. Run with `npm run bench:slurm` (builds
// first), or `node bench/slurm.mjs [options]` after a build. See bench/README.md, "SLURM".
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchOptions, existingDir, f, log, median, positiveInt, requireBuilt } from './common.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = resolve(benchDir, '..');
const fanoutBin = join(root, 'bin', 'fanout.js');
const JOBCOMP_DEFAULT = '/var/log/slurm/jobcomp.txt';

// ---------------------------------------------------------------------------------------------
// Options

const HELP = `Usage: node bench/slurm.mjs [options]

  --n <count>          tasks per scenario (default: env BENCH_SLURM_N or 1000)
  --reps <count>       timed runs of each scenario, interleaved; the median counts (default 1)
  --pack <count>       tasks per array element in the packed fanout scenario (default 10)
  --tmpdir <dir>       where the fresh temp folders go (default: os.tmpdir(), i.e. $TMPDIR or /tmp);
                       on a real cluster it must be on the nodes' shared filesystem
  --out <file>         where to write the JSON (default bench/out/slurm-<date>.json)
  --queue-wait <s>     how long to wait for an empty queue before each run (default 1800)
  --timeout <s>        give up on one run after this long (default 3600)
  --keep               keep the temp folders (printed) instead of deleting them
  -h, --help           this text
`;

const opts = benchOptions(
  {
    n: { type: 'string' },
    reps: { type: 'string', default: '1' },
    pack: { type: 'string', default: '10' },
    tmpdir: { type: 'string' },
    out: { type: 'string' },
    'queue-wait': { type: 'string', default: '1800' },
    timeout: { type: 'string', default: '3600' },
    keep: { type: 'boolean', default: false },
  },
  HELP,
);

const N = positiveInt('--n', opts.n ?? process.env.BENCH_SLURM_N ?? '1000');
const REPS = positiveInt('--reps', opts.reps);
const PACK = positiveInt('--pack', opts.pack);
const QUEUE_WAIT_S = positiveInt('--queue-wait', opts['queue-wait']);
const TIMEOUT_S = positiveInt('--timeout', opts.timeout);
const RAW_POLL_MS = 500;
const RATIO_GOAL = 1.25;

// ---------------------------------------------------------------------------------------------
// Environment

const sinfo = spawnSync('sinfo', ['-h', '-o', '%P %a %D %T'], { encoding: 'utf8', timeout: 30_000 });
if (sinfo.error || sinfo.status !== 0) {
  const why = sinfo.error?.code === 'ENOENT' ? 'sinfo is not installed' : (sinfo.stderr || `sinfo exited ${sinfo.status}`).trim().split('\n')[0];
  console.error(`bench: SLURM is not reachable (${why}); start it with: bash scripts/hpc/slurm.sh install && bash scripts/hpc/slurm.sh start`);
  process.exit(2);
}
requireBuilt(root, 'bench:slurm');
const tmpRoot = existingDir('--tmpdir', opts.tmpdir);

const user = os.userInfo().username;
const date = new Date().toISOString();
const outFile = resolve(opts.out ?? join(benchDir, 'out', `slurm-${date.slice(0, 19).replace(/:/g, '')}.json`));
const firstLine = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout || r.stderr).split('\n')[0].trim() : null;
};
const git = (args) => spawnSync('git', args, { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? null;
const config = spawnSync('scontrol', ['show', 'config'], { encoding: 'utf8' }).stdout ?? '';
const configValue = (key) => new RegExp(`^${key}\\s*=\\s*(.*)$`, 'm').exec(config)?.[1]?.trim() ?? null;
const jobcompPath = configValue('JobCompType') === 'jobcomp/filetxt' ? (configValue('JobCompLoc') ?? JOBCOMP_DEFAULT) : null;
const cpus = os.cpus();
const machine = {
  cpuModel: cpus[0]?.model ?? 'unknown',
  cpuCount: cpus.length,
  totalMemoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  node: process.version,
  tmpdir: tmpRoot,
  slurm: firstLine('sinfo', ['--version']),
  sinfo: sinfo.stdout.trim().split('\n'),
  nodes: spawnSync('sinfo', ['-h', '-N', '-o', '%N %c %m'], { encoding: 'utf8' }).stdout?.trim() ?? null,
  schedulerType: configValue('SchedulerType'),
  schedulerParameters: configValue('SchedulerParameters'),
  maxArraySize: configValue('MaxArraySize'),
  fanoutCommit: git(['rev-parse', '--short', 'HEAD']),
  fanoutTreeDirty: Boolean(git(['status', '--porcelain', '--untracked-files=no', '--', 'src'])),
  fanoutBuiltAt: statSync(join(root, 'dist', 'cli', 'main.js')).mtime.toISOString(),
};

// ---------------------------------------------------------------------------------------------
// Scheduler helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function run(cmd, args, { cwd } = {}) {
  return new Promise((resolveRun) => {
    execFile(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 2 ** 20, timeout: 120_000 }, (error, stdout, stderr) => {
      resolveRun({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr, error });
    });
  });
}

/** The user's jobs in the queue, one line per job (arrays collapsed), `id|name|state`. */
async function userJobs() {
  const r = await run('squeue', ['-h', '-u', user, '-o', '%i|%j|%T']);
  if (r.code !== 0) throw new Error(`squeue failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Before every timed run: wait until the user has no job in the queue, so runs never overlap. */
async function waitForEmptyQueue() {
  const started = Date.now();
  let announced = false;
  for (;;) {
    const jobs = await userJobs();
    if (jobs.length === 0) {
      const waitedS = (Date.now() - started) / 1000;
      if (announced) log(`  queue empty after ${waitedS.toFixed(0)} s`);
      return { waitedS, seen: [] };
    }
    if (!announced) {
      log(`  waiting for an empty queue (${jobs.length} job line(s) of ${user}: ${jobs.slice(0, 3).join(', ')}${jobs.length > 3 ? ', …' : ''}) ...`);
      announced = true;
    }
    if (Date.now() - started > QUEUE_WAIT_S * 1000) {
      throw new Error(`the queue still has jobs of ${user} after ${QUEUE_WAIT_S} s (--queue-wait): ${jobs.slice(0, 5).join(', ')}`);
    }
    await sleep(2000);
  }
}

function jobcompSize() {
  try {
    return jobcompPath ? statSync(jobcompPath).size : null;
  } catch {
    return null;
  }
}

/**
 * Jobs that were not ours and ended during a run (from SLURM's job completion log, read after the
 * run, so it costs the controller nothing), plus any in the queue right after it. Either means
 * the run shared the node with someone else's jobs and its figures may be disturbed.
 */
async function foreignJobs(fromOffset, ourJobIds) {
  const ours = new Set(ourJobIds.map(String));
  const ended = new Set();
  if (fromOffset != null && jobcompPath) {
    try {
      const text = readFileSync(jobcompPath, 'utf8').slice(fromOffset); // ASCII log: bytes = chars
      for (const line of text.split('\n')) {
        const jobId = /(?:^|\s)JobId=(\d+)/.exec(line)?.[1];
        if (!jobId) continue;
        const arrayJobId = /(?:^|\s)ArrayJobId=(\d+)/.exec(line)?.[1] ?? jobId;
        if (!ours.has(arrayJobId) && !ours.has(jobId)) {
          const name = /(?:^|\s)Name=(\S*)/.exec(line)?.[1] ?? '?';
          ended.add(`${arrayJobId}(${name})`);
        }
      }
    } catch {}
  }
  const queued = (await userJobs()).filter((l) => !ours.has(l.split('|')[0].split('_')[0]));
  return { endedDuring: [...ended], queuedAfter: queued };
}

// ---------------------------------------------------------------------------------------------
// Temp folders

const toDelete = [];
function freshDir(tag) {
  const dir = mkdtempSync(join(tmpRoot, `fanout-bench-slurm-${tag}-`));
  toDelete.push(dir);
  return dir;
}
function deleteAll() {
  if (opts.keep) {
    for (const dir of toDelete) log(`  kept ${dir}`);
    return;
  }
  for (const dir of toDelete.splice(0)) rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// RAW: one hand-written array and a squeue loop

async function runRaw(dir) {
  const started = process.hrtime.bigint();
  const sub = await run('sbatch', ['--parsable', `--array=0-${N - 1}`, '-o', '/dev/null', '--wrap', 'true'], { cwd: dir });
  const jobId = /^(\d+)/.exec(sub.stdout.trim())?.[1];
  if (sub.code !== 0 || !jobId) throw new Error(`sbatch failed: ${(sub.stderr || sub.stdout).trim()}`);
  let polls = 0;
  let pollErrors = 0;
  let nextAt = Date.now();
  for (;;) {
    const wait = nextAt - Date.now();
    if (wait > 0) await sleep(wait);
    nextAt = Date.now() + RAW_POLL_MS;
    polls++;
    const r = await run('squeue', ['-h', '-r', '-j', jobId, '-o', '%i']);
    // Once the controller has purged the job (MinJobAge after its end), squeue says "Invalid job id".
    if (r.code !== 0 && !/invalid job id/i.test(r.stderr)) {
      pollErrors++;
    } else if (r.stdout.trim() === '') {
      break;
    }
    if (process.hrtime.bigint() - started > BigInt(TIMEOUT_S) * 1_000_000_000n) {
      await run('scancel', [jobId]);
      throw new Error(`raw array ${jobId} not drained after ${TIMEOUT_S} s (--timeout); cancelled it`);
    }
  }
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    wallS,
    jobIds: [jobId],
    commands: { sbatch: 1, squeue: polls },
    submissions: 1,
    polls,
    other: 0,
    pollErrors,
  };
}

// ---------------------------------------------------------------------------------------------
// FANOUT: `fanout run job.yaml --backend slurm --json` in a fresh folder

function writeJob(dir, pack) {
  const lines = ['command: "true"', 'tasks:', '  each:'];
  for (let i = 0; i < N; i++) lines.push(`    - ${i}`);
  if (pack > 1) lines.push('cluster:', `  pack: ${pack}`);
  lines.push('');
  writeFileSync(join(dir, 'job.yaml'), lines.join('\n'));
}

/** `<iso time> <ms>ms exit <code>: <command> <args…>` per line. */
function readCommandLog(path) {
  const calls = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(\S+) (\d+)ms exit (-?\d+): (\S+)(?: (.*))?$/.exec(line);
    if (m) calls.push({ at: Date.parse(m[1]), ms: Number(m[2]), code: Number(m[3]), command: m[4], args: m[5] ?? '' });
  }
  return calls;
}

/** The arrays the run submitted: job id and element count of each, from its work folder. */
function readArrays(runDir) {
  const arraysDir = join(runDir, 'arrays');
  if (!existsSync(arraysDir)) return [];
  return readdirSync(arraysDir)
    .map(Number)
    .filter(Number.isInteger)
    .sort((a, b) => a - b)
    .map((seq) => {
      const dir = join(arraysDir, String(seq));
      const read = (f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');
      return {
        seq,
        jobId: read('job').trim() || null,
        elements: read('elements').split('\n').filter(Boolean).length,
        tasks: read('elements').split(/\s+/).filter(Boolean).length,
      };
    });
}

async function runFanout(dir, pack) {
  writeJob(dir, pack);
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [fanoutBin, 'run', 'job.yaml', '--backend', 'slurm', '--json'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout = [];
  const stderr = [];
  child.stdout.on('data', (b) => stdout.push(b));
  child.stderr.on('data', (b) => stderr.push(b));
  const closed = new Promise((r) => child.once('close', r));
  let exitedAt = null;
  const timer = setTimeout(() => child.kill('SIGINT'), TIMEOUT_S * 1000);
  const { code, signal } = await new Promise((resolveExit, rejectExit) => {
    child.on('error', rejectExit);
    child.on('exit', (c, s) => {
      exitedAt = process.hrtime.bigint();
      resolveExit({ code: c, signal: s });
    });
  });
  await closed;
  clearTimeout(timer);
  const wallS = Number(exitedAt - started) / 1e9;
  const out = Buffer.concat(stdout).toString('utf8');
  const err = Buffer.concat(stderr).toString('utf8');
  const runDir = join(dir, '.fanout', 'work', '1');
  const arrays = readArrays(runDir);
  const jobIds = arrays.map((a) => a.jobId).filter(Boolean);
  if (code !== 0) {
    if (jobIds.length) await run('scancel', jobIds);
    throw new Error(`fanout exited ${code}${signal ? ` (${signal})` : ''} in ${dir}\n${err.trim().split('\n').slice(-15).join('\n')}`);
  }
  let status;
  try {
    status = JSON.parse(out.trim().split('\n').pop());
  } catch {
    throw new Error(`fanout printed no JSON status in ${dir}:\n${out.slice(-2000)}`);
  }
  if (status.state !== 'succeeded' || status.counts?.succeeded !== N) {
    throw new Error(`fanout run did not succeed in ${dir}: ${JSON.stringify(status)}`);
  }
  const logPath = join(runDir, 'scheduler-commands.log');
  if (!existsSync(logPath)) throw new Error(`no scheduler command log at ${logPath}`);
  const calls = readCommandLog(logPath);
  const byName = { sbatch: 0, squeue: 0, scontrol: 0, sacct: 0, scancel: 0 };
  for (const c of calls) byName[c.command] = (byName[c.command] ?? 0) + 1;
  const failed = calls.filter((c) => c.code !== 0).map((c) => `${c.command} exit ${c.code}`);
  const squeueAt = calls.filter((c) => c.command === 'squeue').map((c) => c.at);
  const pollGapsS = squeueAt.slice(1).map((t, i) => (t - squeueAt[i]) / 1000);
  const sbatchAt = calls.filter((c) => c.command === 'sbatch').map((c) => c.at);
  const t0 = calls[0]?.at ?? 0;
  // Not in the log: the check before the run starts (`sbatch --test-only` on the first array).
  const testOnly = 1;
  const submissions = byName.sbatch;
  const polls = byName.squeue;
  const other = Object.entries(byName)
    .filter(([k]) => k !== 'sbatch' && k !== 'squeue')
    .reduce((s, [, v]) => s + v, 0);
  const inRunS = status.createdAt && status.endedAt ? (Date.parse(status.endedAt) - Date.parse(status.createdAt)) / 1000 : null;
  return {
    wallS,
    inRunS,
    jobIds,
    commands: { ...byName, 'sbatch --test-only (pre-check, not in the log)': testOnly },
    submissions,
    testOnly,
    polls,
    other,
    failedCommands: failed,
    arrays: arrays.map(({ jobId, elements, tasks }) => ({ jobId, elements, tasks })),
    sbatchAtS: sbatchAt.map((t) => +((t - t0) / 1000).toFixed(2)),
    pollGapS: pollGapsS.length ? { median: median(pollGapsS), min: Math.min(...pollGapsS), max: Math.max(...pollGapsS) } : null,
    commandLogSpanS: calls.length ? (calls.at(-1).at - t0) / 1000 : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const SCENARIOS = [
  {
    key: 'raw',
    label: 'raw sbatch --array + squeue loop',
    runs: `sbatch --parsable --array=0-${N - 1} -o /dev/null --wrap true; squeue -h -r -j <id> -o %i every ${RAW_POLL_MS / 1000} s until empty`,
    run: (dir) => runRaw(dir),
  },
  {
    key: 'fanout',
    label: 'fanout --backend slurm',
    runs: 'node bin/fanout.js run job.yaml --backend slurm --json; command: "true", tasks: each: [0..N-1]',
    run: (dir) => runFanout(dir, 1),
  },
  {
    key: 'packed',
    label: `fanout, pack: ${PACK}`,
    runs: `the same with cluster: pack: ${PACK} (${PACK} tasks one after another in each array element)`,
    run: (dir) => runFanout(dir, PACK),
  },
];

async function runAll() {
  const samples = Object.fromEntries(SCENARIOS.map((s) => [s.key, []]));
  for (let rep = 0; rep < REPS; rep++) {
    // Rotate the order each repetition so no scenario always runs first or last.
    const order = SCENARIOS.map((_, i) => SCENARIOS[(i + rep) % SCENARIOS.length]);
    for (const sc of order) {
      const waited = await waitForEmptyQueue();
      const dir = freshDir(sc.key);
      const offset = jobcompSize();
      const startedAt = new Date().toISOString();
      log(`  rep ${rep + 1}/${REPS}  ${sc.label} (N=${N}) ...`);
      const r = await sc.run(dir);
      const foreign = await foreignJobs(offset, r.jobIds);
      const disturbed = foreign.endedDuring.length > 0 || foreign.queuedAfter.length > 0;
      samples[sc.key].push({ ...r, rep: rep + 1, startedAt, queueWaitS: +waited.waitedS.toFixed(1), foreign, disturbed });
      log(
        `  rep ${rep + 1}/${REPS}  ${sc.label.padEnd(34)} ${r.wallS.toFixed(2)} s  ` +
          `sbatch ${r.submissions}${r.testOnly ? ` (+${r.testOnly} --test-only)` : ''}, squeue ${r.polls}, other ${r.other}` +
          (r.arrays ? `; ${r.arrays.length} array(s): ${arraySizes(r.arrays)} elements` : '') +
          (disturbed ? `  DISTURBED: other jobs ${[...foreign.endedDuring, ...foreign.queuedAfter].slice(0, 5).join(', ')}` : ''),
      );
    }
  }
  const results = {};
  for (const sc of SCENARIOS) {
    const runs = samples[sc.key];
    const pick = (f) => median(runs.map(f));
    results[sc.key] = {
      label: sc.label,
      runs: sc.runs,
      wallS: pick((r) => r.wallS),
      minWallS: Math.min(...runs.map((r) => r.wallS)),
      sPerTask: pick((r) => r.wallS) / N,
      inRunS: runs[0].inRunS !== undefined ? pick((r) => r.inRunS ?? NaN) : undefined,
      submissions: pick((r) => r.submissions),
      testOnly: runs[0].testOnly ?? 0,
      polls: pick((r) => r.polls),
      other: pick((r) => r.other),
      disturbedRuns: runs.filter((r) => r.disturbed).length,
      samples: runs,
    };
  }
  for (const key of ['fanout', 'packed']) {
    results[key].overRaw = results[key].wallS / results.raw.wallS;
    results[key].overRawMin = results[key].minWallS / results.raw.minWallS;
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// Output

const ratio = (x) => (x == null || !Number.isFinite(x) ? '' : `${x.toFixed(2)}x`);
/** `1×500, 131×2, …`: how many arrays had how many elements, in the order first seen. */
function arraySizes(arrays) {
  const counts = new Map();
  for (const a of arrays) counts.set(a.elements, (counts.get(a.elements) ?? 0) + 1);
  return [...counts].map(([size, count]) => `${count}×${size}`).join(', ');
}
const num = (x) => (Number.isInteger(x) ? String(x) : f(x, 1));

function markdownTable(results) {
  const out = [
    `| scenario (N=${N}) | seconds | s per task | fanout ÷ raw (goal ≤ ${RATIO_GOAL}) | submissions | polls | other |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const sc of SCENARIOS) {
    const r = results[sc.key];
    out.push(
      `| ${r.label} | ${f(r.wallS, 1)} | ${f(r.sPerTask, 3)} | ${ratio(r.overRaw)} | ` +
        `${num(r.submissions)}${r.testOnly ? ` (+${r.testOnly} test-only)` : ''} | ${num(r.polls)} | ${num(r.other)} |`,
    );
  }
  return out.join('\n');
}

async function main() {
  log(`fanout SLURM bench: N=${N}, reps=${REPS}, pack=${PACK}, temp folders in ${tmpRoot}`);
  const results = await runAll();
  const p = (s = '') => process.stdout.write(s + '\n');
  p();
  p(`fanout SLURM bench — ${date}`);
  p(`machine: ${machine.cpuModel} × ${machine.cpuCount} CPUs, ${machine.totalMemoryGiB} GiB RAM, ${machine.os}, node ${machine.node}`);
  p(`${machine.slurm ?? 'slurm ?'}; nodes (name cpus MiB): ${machine.nodes}; ${machine.schedulerType}, ${machine.schedulerParameters}`);
  p(`fanout ${machine.fanoutCommit}${machine.fanoutTreeDirty ? ' (src has uncommitted changes)' : ''}, built ${machine.fanoutBuiltAt}`);
  p(`N=${N} tasks of \`true\` per scenario; ${REPS === 1 ? 'one run each' : `medians of ${REPS} interleaved runs`}; each run starts on an empty queue`);
  p();
  p(markdownTable(results));
  p();
  const fo = results.fanout;
  const pk = results.packed;
  p(
    `goal fanout ÷ raw ≤ ${RATIO_GOAL}: fanout ${ratio(fo.overRaw)} (${fo.overRaw <= RATIO_GOAL ? 'met' : 'NOT met'}), ` +
      `packed ${ratio(pk.overRaw)} (${pk.overRaw <= RATIO_GOAL ? 'met' : 'NOT met'})` +
      (REPS > 1 ? `; from the fastest runs ${ratio(fo.overRawMin)} and ${ratio(pk.overRawMin)}` : ''),
  );
  for (const sc of SCENARIOS) {
    const r = results[sc.key];
    const s = r.samples.at(-1);
    const counts = Object.entries(s.commands)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    p(`  ${r.label}: ${counts}` + (s.inRunS != null ? `; in-run ${f(s.inRunS, 1)} s of ${f(s.wallS, 1)} s` : ''));
    if (s.arrays) {
      const gaps = s.sbatchAtS.slice(1).map((t, i) => t - s.sbatchAtS[i]);
      p(
        `    ${s.arrays.length} array(s) of ${arraySizes(s.arrays)} elements; sbatch from ${f(s.sbatchAtS[0], 1)} to ${f(s.sbatchAtS.at(-1), 1)} s ` +
          `after the first logged command${gaps.length ? ` (gaps: median ${f(median(gaps), 2)} s)` : ''}`,
      );
      if (s.pollGapS) p(`    squeue every ${f(s.pollGapS.median, 1)} s (median; min ${f(s.pollGapS.min, 1)}, max ${f(s.pollGapS.max, 1)})`);
      if (s.failedCommands.length) p(`    commands that failed: ${s.failedCommands.join(', ')}`);
    }
  }
  p('  raw = submit to squeue empty (polled every 0.5 s); fanout = spawn to exit, Node startup included;');
  p('  submissions = sbatch calls (fanout: from .fanout/work/1/scheduler-commands.log; its pre-run `sbatch --test-only` is not in the log: +1);');
  p('  polls = squeue calls; other = scontrol + sacct + scancel. Command counts are those of the last run.');
  const disturbed = SCENARIOS.flatMap((sc) => results[sc.key].samples.filter((s) => s.disturbed).map((s) => ({ key: sc.key, s })));
  if (disturbed.length) {
    p();
    p(`WARNING: ${disturbed.length} run(s) shared the cluster with other jobs; their figures may be disturbed:`);
    for (const { key, s } of disturbed) {
      p(`  ${key} rep ${s.rep}: ended during it ${s.foreign.endedDuring.join(', ') || '-'}; queued after it ${s.foreign.queuedAfter.join(', ') || '-'}`);
    }
  } else if (jobcompPath) {
    p(`no other jobs ran during the measurements (checked in ${jobcompPath} and squeue)`);
  } else {
    p('no other jobs in the queue after each run (no job completion log to check what ran during it)');
  }
  const json = { date, machine, n: N, reps: REPS, pack: PACK, rawPollMs: RAW_POLL_MS, goal: { fanoutOverRaw: RATIO_GOAL }, results };
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(json, null, 2) + '\n');
  p();
  p(`JSON written to ${outFile}`);
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
