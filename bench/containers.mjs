#!/usr/bin/env node
// Container overhead: the same job of N × `true` on the local backend with and without
// `container:` (podman), side by side; `podman run --rm IMAGE true` and `podman exec` alone
// against `/bin/true`; and a prototype of amortising the start: one container per slot running
// its share of the tasks. Run with `npm run bench:containers` (builds first), or
// `node bench/containers.mjs [options]` after a build. See bench/README.md (Containers).
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchOptions, existingDir, f, log, median, positiveInt, requireBuilt } from './common.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = resolve(benchDir, '..');
const fanoutBin = join(root, 'bin', 'fanout.js');

const HELP = `Usage: node bench/containers.mjs [options]

  --n <count>          tasks per fanout run and per amortised run (default 40)
  --reps <count>       timed runs of each scenario, interleaved; the median counts (default 3)
  --concurrency <n>    tasks (and containers) at once (default 2)
  --starts <count>     sequential \`podman run\`, \`podman exec\` and /bin/true for the reference rows (default 10)
  --image <name>       use this image (it needs /bin/sh and true) instead of building one
  --out <file>         where to write the JSON (default bench/out/containers.json)
  --tmpdir <dir>       where the fresh temp folders go (default: the OS temp folder)
  --cluster <name>     also run the container job on slurm or sge with cluster.pack, a container
                       per task against one per packed element (container.per: element)
  --pack <count>       tasks per array element for --cluster (default 10)
  --keep               keep the temp folders and the built image
  -h, --help           this text
`;

const opts = benchOptions(
  {
    n: { type: 'string', default: '40' },
    reps: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '2' },
    starts: { type: 'string', default: '10' },
    image: { type: 'string' },
    out: { type: 'string', default: join(benchDir, 'out', 'containers.json') },
    tmpdir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    cluster: { type: 'string' },
    pack: { type: 'string', default: '10' },
  },
  HELP,
);

const N = positiveInt('--n', opts.n);
const REPS = positiveInt('--reps', opts.reps);
const CONCURRENCY = positiveInt('--concurrency', opts.concurrency);
const STARTS = positiveInt('--starts', opts.starts);
const PACK = positiveInt('--pack', opts.pack);
if (opts.cluster !== undefined && opts.cluster !== 'slurm' && opts.cluster !== 'sge') {
  console.error(`bench: --cluster takes slurm or sge, not ${opts.cluster}`);
  process.exit(2);
}
const tmpRoot = existingDir('--tmpdir', opts.tmpdir);
requireBuilt(root, 'bench:containers');

function sh(cmd, args, options = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', ...options });
}

function mustRun(cmd, args, what) {
  const r = sh(cmd, args);
  if (r.status !== 0) {
    console.error(`bench: ${what} failed (${cmd} ${args.join(' ')}):\n${(r.stderr || r.error?.message || '').trim()}`);
    process.exit(1);
  }
  return r.stdout.trim();
}

if (sh('podman', ['--version']).status !== 0) {
  console.error('bench: podman is not installed (Debian: apt-get install podman runc busybox-static)');
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// The image: FROM scratch with Debian's static busybox, built here (no registry needed).

const BUSYBOX = '/bin/busybox';
const builtImage = opts.image ? null : `localhost/fanout-bench-containers-${process.pid}:1`;
const IMAGE = opts.image ?? builtImage;
if (builtImage) {
  if (!existsSync(BUSYBOX)) {
    console.error(`bench: ${BUSYBOX} is missing (apt-get install busybox-static), or give --image`);
    process.exit(2);
  }
  const context = mkdtempSync(join(tmpRoot, 'fanout-bench-image-'));
  copyFileSync(BUSYBOX, join(context, 'busybox'));
  writeFileSync(join(context, 'Containerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n');
  log(`building ${builtImage}`);
  mustRun('podman', ['build', '--quiet', '--tag', builtImage, context], 'building the image');
  rmSync(context, { recursive: true, force: true });
}
const imageId = mustRun('podman', ['image', 'inspect', '--format', '{{.Id}}', IMAGE], `podman image inspect ${IMAGE}`);

// ---------------------------------------------------------------------------------------------
// Timing

/** Runs argv to its exit; wall seconds from just before spawn to exit. */
function timed(argv, { cwd = tmpRoot, capture = false } = {}) {
  return new Promise((resolveRun, rejectRun) => {
    const started = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { cwd, stdio: ['ignore', capture ? 'pipe' : 'ignore', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout?.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    child.on('error', rejectRun);
    child.on('close', (code, signal) =>
      resolveRun({
        code,
        signal,
        wallS: Number(process.hrtime.bigint() - started) / 1e9,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}

function failed(what, r, dir) {
  throw new Error(`${what} failed (exit ${r.code}${r.signal ? `, signal ${r.signal}` : ''}) in ${dir}\n${r.stderr.trim().split('\n').slice(-15).join('\n')}`);
}

const toDelete = [];
function freshDir(tag) {
  const dir = mkdtempSync(join(tmpRoot, `fanout-bench-${tag}-`));
  toDelete.push(dir);
  return dir;
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/** The same job every way: only the `container:` block (and, on a cluster, the packing) differs. */
function writeJob(dir, inContainer, cluster) {
  const lines = ['command: "true"', 'tasks:', '  each:'];
  for (let i = 1; i <= N; i++) lines.push(`    - ${i}`);
  if (cluster) lines.push('cluster:', `  pack: ${PACK}`);
  else lines.push(`concurrency: ${CONCURRENCY}`);
  if (inContainer) lines.push('container:', `  image: ${JSON.stringify(IMAGE)}`, '  engine: podman', '  pull: never');
  if (cluster?.per) lines.push(`  per: ${cluster.per}`);
  writeFileSync(join(dir, 'job.yaml'), lines.join('\n') + '\n');
}

async function fanoutRun(inContainer, cluster = null) {
  const dir = freshDir(cluster ? `${opts.cluster}-${cluster.per}` : inContainer ? 'container' : 'bare');
  writeJob(dir, inContainer, cluster);
  const backend = cluster ? ['--backend', opts.cluster] : [];
  const r = await timed([process.execPath, fanoutBin, 'run', 'job.yaml', '--home', join(dir, 'home'), '--fresh', '--json', ...backend], { cwd: dir, capture: true });
  if (r.code !== 0) failed(`fanout run (${inContainer ? 'container' : 'bare'})`, r, dir);
  const status = JSON.parse(r.stdout.trim().split('\n').pop());
  if (status.state !== 'succeeded' || status.counts?.succeeded !== N) throw new Error(`fanout run did not succeed in ${dir}: ${JSON.stringify(status)}`);
  const inRunS = (Date.parse(status.endedAt) - Date.parse(status.createdAt)) / 1000;
  return { wallS: r.wallS, inRunS };
}

/**
 * What "one container per slot" would reach: CONCURRENCY containers at once, each running its
 * share of the N tasks one after another through `/bin/sh -c`, each task's output and error in
 * its own files and its exit status recorded, as fanout's runner does per attempt. The flags are
 * those fanout gives every container (user ids, host network, same-path mount, workdir).
 */
async function amortisedRun() {
  const dir = freshDir('amortised');
  const perSlot = Array.from({ length: CONCURRENCY }, (_, slot) => {
    const tasks = [];
    for (let i = slot + 1; i <= N; i += CONCURRENCY) tasks.push(i);
    return tasks;
  });
  const loop = 'for i in "$@"; do /bin/sh -c true > "$PWD/$i.out" 2> "$PWD/$i.err"; echo "$i $?" >> "$PWD/results"; done';
  const started = process.hrtime.bigint();
  const runs = await Promise.all(
    perSlot.map((tasks) =>
      timed(
        [
          'podman',
          'run',
          '--rm',
          '--user',
          `${process.getuid()}:${process.getgid()}`,
          '--network=host',
          '--pull=never',
          '--volume',
          `${dir}:${dir}`,
          '--workdir',
          dir,
          '--entrypoint',
          '/bin/sh',
          IMAGE,
          '-c',
          loop,
          'fanout-slot',
          ...tasks.map(String),
        ],
        { cwd: dir },
      ),
    ),
  );
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  for (const r of runs) if (r.code !== 0) failed('podman run (one container per slot)', r, dir);
  const results = readFileSync(join(dir, 'results'), 'utf8').trim().split('\n');
  if (results.length !== N || results.some((line) => !line.endsWith(' 0'))) throw new Error(`amortised run: ${results.length} of ${N} tasks recorded ok in ${dir}`);
  return { wallS };
}

/** Median wall of `count` sequential runs of argv, after one untimed. */
async function sequential(argv, count) {
  await timed(argv);
  const walls = [];
  for (let i = 0; i < count; i++) {
    const r = await timed(argv);
    if (r.code !== 0) failed(argv.join(' '), r, tmpRoot);
    walls.push(r.wallS);
  }
  return { medianS: median(walls), minS: Math.min(...walls), maxS: Math.max(...walls) };
}

async function execReference() {
  const cid = mustRun('podman', ['run', '--detach', '--rm', '--network=host', IMAGE, 'sleep', '3600'], 'starting a container for podman exec');
  try {
    return await sequential(['podman', 'exec', cid, 'true'], STARTS);
  } finally {
    sh('podman', ['rm', '--force', '--time', '0', cid]);
  }
}

// ---------------------------------------------------------------------------------------------
// Main

const SCENARIOS = [
  { key: 'bare', label: `fanout, bare \`true\``, run: () => fanoutRun(false) },
  { key: 'container', label: `fanout, \`true\` in podman`, run: () => fanoutRun(true) },
  { key: 'amortised', label: `${CONCURRENCY} containers, ${N} tasks looped in them`, run: amortisedRun },
  ...(opts.cluster
    ? [
        { key: 'clusterTask', label: `${opts.cluster}, pack ${PACK}, container per task`, run: () => fanoutRun(true, { per: 'task' }) },
        { key: 'clusterElement', label: `${opts.cluster}, pack ${PACK}, per: element`, run: () => fanoutRun(true, { per: 'element' }) },
      ]
    : []),
];

function machine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuCount: cpus.length,
    totalMemoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    podman: mustRun('podman', ['--version'], 'podman --version'),
    runtime: sh('podman', ['info', '--format', '{{.Host.OCIRuntime.Version}}']).stdout.split('\n')[0]?.trim() ?? null,
    cgroups: sh('podman', ['info', '--format', '{{.Host.CgroupsVersion}}']).stdout.trim() || null,
    loadBefore: os.loadavg()[0],
  };
}

async function main() {
  const about = machine();
  log(`containers bench: N=${N}, reps=${REPS}, concurrency=${CONCURRENCY}, image ${IMAGE} (${imageId.slice(0, 12)})`);
  // Warm-up, not counted: page cache for node_modules, the image's layers, podman's state.
  for (const scenario of SCENARIOS) await scenario.run();
  const samples = Object.fromEntries(SCENARIOS.map((s) => [s.key, []]));
  for (let rep = 0; rep < REPS; rep++) {
    const order = SCENARIOS.map((_, i) => SCENARIOS[(i + rep) % SCENARIOS.length]);
    for (const scenario of order) {
      const r = await scenario.run();
      samples[scenario.key].push(r);
      log(`  rep ${rep + 1}/${REPS}  ${scenario.label.padEnd(36)} ${r.wallS.toFixed(3)} s`);
    }
  }
  log(`  ${STARTS} × podman run --rm, podman exec, /bin/true, one after another`);
  const reference = {
    podmanRun: await sequential(['podman', 'run', '--rm', '--network=host', IMAGE, 'true'], STARTS),
    podmanExec: await execReference(),
    binTrue: await sequential(['/bin/true'], STARTS),
  };

  const rows = Object.fromEntries(
    SCENARIOS.map((s) => {
      const walls = samples[s.key].map((r) => r.wallS);
      const inRun = samples[s.key].map((r) => r.inRunS).filter((x) => x != null);
      return [s.key, { label: s.label, wallS: median(walls), minWallS: Math.min(...walls), wallRunsS: walls, inRunS: inRun.length ? median(inRun) : null }];
    }),
  );
  const bare = rows.bare;
  const container = rows.container;
  const amortised = rows.amortised;
  const msPerTask = (wallS) => (wallS / N) * 1000;
  const summary = {
    containerOverBare: container.wallS / bare.wallS,
    // Without what every fanout run costs once (Node, planning, the store): tasks only.
    containerOverBareInRun: container.inRunS / bare.inRunS,
    containerInRunMsPerTask: msPerTask(container.inRunS),
    bareInRunMsPerTask: msPerTask(bare.inRunS),
    containerMsPerTask: msPerTask(container.wallS),
    bareMsPerTask: msPerTask(bare.wallS),
    // What each container adds to its task, in seconds of a slot: the extra wall times the slots.
    extraSlotMsPerTask: ((container.wallS - bare.wallS) * CONCURRENCY * 1000) / N,
    amortisedMsPerTask: msPerTask(amortised.wallS),
    containerOverAmortised: container.wallS / amortised.wallS,
    podmanRunOverTrue: reference.podmanRun.medianS / reference.binTrue.medianS,
    ...(opts.cluster ? { clusterTaskOverElementInRun: rows.clusterTask.inRunS / rows.clusterElement.inRunS } : {}),
  };
  about.loadAfter = os.loadavg()[0];

  const lines = [
    `| N=${N} × \`true\`, ${CONCURRENCY} at once | wall (s) | min (s) | ms/task | ÷ bare | in-run (s) | in-run ms/task | in-run ÷ bare |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...SCENARIOS.map((s) => {
      const r = rows[s.key];
      const vsBare = (a, b) => (s.key === 'bare' || a == null ? '' : `${f(a / b, 1)}x`);
      return (
        `| ${r.label} | ${f(r.wallS, 2)} | ${f(r.minWallS, 2)} | ${f(msPerTask(r.wallS), 1)} | ${vsBare(r.wallS, bare.wallS)} | ` +
        `${f(r.inRunS, 2)} | ${r.inRunS == null ? '-' : f(msPerTask(r.inRunS), 1)} | ${vsBare(r.inRunS, bare.inRunS)} |`
      );
    }),
    '',
    `| one at a time (${STARTS} runs) | median (ms) | min (ms) | max (ms) |`,
    '| --- | ---: | ---: | ---: |',
    `| podman run --rm IMAGE true | ${f(reference.podmanRun.medianS * 1000, 0)} | ${f(reference.podmanRun.minS * 1000, 0)} | ${f(reference.podmanRun.maxS * 1000, 0)} |`,
    `| podman exec CONTAINER true | ${f(reference.podmanExec.medianS * 1000, 0)} | ${f(reference.podmanExec.minS * 1000, 0)} | ${f(reference.podmanExec.maxS * 1000, 0)} |`,
    `| /bin/true | ${f(reference.binTrue.medianS * 1000, 1)} | ${f(reference.binTrue.minS * 1000, 1)} | ${f(reference.binTrue.maxS * 1000, 1)} |`,
    '',
    `container ÷ bare (fanout, ${N} tasks): ${f(summary.containerOverBare, 0)}x whole process, ${f(summary.containerOverBareInRun, 0)}x in-run ` +
      `(${f(summary.containerInRunMsPerTask, 0)} ms/task against ${f(summary.bareInRunMsPerTask, 1)}); ` +
      `each container adds ${f(summary.extraSlotMsPerTask, 0)} ms to its task's slot`,
    `one container per slot (prototype): ${f(summary.amortisedMsPerTask, 1)} ms/task, ${f(summary.containerOverAmortised, 0)}x less than a container per task`,
    `podman run --rm ÷ /bin/true: ${f(summary.podmanRunOverTrue, 0)}x`,
    ...(opts.cluster
      ? [`${opts.cluster}, pack ${PACK}: a container per task ÷ one per element (per: element), in-run: ${f(summary.clusterTaskOverElementInRun, 1)}x`]
      : []),
    `load average (1 min) before ${f(about.loadBefore, 2)}, after ${f(about.loadAfter, 2)} on ${about.cpuCount} CPUs`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(
    opts.out,
    JSON.stringify(
      { date: new Date().toISOString(), machine: about, n: N, reps: REPS, concurrency: CONCURRENCY, image: IMAGE, imageId, rows, reference, summary },
      null,
      2,
    ) + '\n',
  );
  log(`JSON: ${opts.out}`);
}

try {
  await main();
} finally {
  if (opts.keep) {
    for (const dir of toDelete) log(`  kept ${dir}`);
  } else {
    for (const dir of toDelete) rmSync(dir, { recursive: true, force: true });
    if (builtImage) sh('podman', ['rmi', '--force', builtImage]);
  }
}
