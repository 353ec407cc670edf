#!/usr/bin/env node
// fanout benchmark: the native process launcher alone, without the coordinator or the store.
// N attempts of `true`, a few in flight, through one launcher, three ways: posix_spawn and fork
// with the attempt folders on tmpfs (the launcher's own cost), and posix_spawn with them in the
// temp folder (plus the filesystem's). Run with `npm run bench:launcher` (builds first), or
// `node bench/launcher-throughput.mjs [--n 2000] [--in-flight 2]` after a build. It was a unit
// test; a timed loop of thousands of processes is a benchmark, and it failed on a busy machine.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchOptions, existingDir, f, log, positiveInt, requireBuilt } from './common.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `Usage: node bench/launcher-throughput.mjs [options]   (npm run bench:launcher -- [options])

  --n N            attempts of \`true\` per scenario (default 2000)
  --in-flight K    attempts in flight at once (default 2)
  --tmpdir DIR     the folder of the third scenario's attempt folders (default: the OS temp folder)
  -h, --help       this text
`;

const opts = benchOptions(
  {
    n: { type: 'string', default: '2000' },
    'in-flight': { type: 'string', default: '2' },
    tmpdir: { type: 'string' },
  },
  HELP,
);
const N = positiveInt('--n', opts.n);
const IN_FLIGHT = positiveInt('--in-flight', opts['in-flight']);
const TMPDIR = existingDir('--tmpdir', opts.tmpdir);
requireBuilt(root, 'bench:launcher');

const { Launcher } = await import(join(root, 'dist', 'runner', 'launcher.js'));

const shm = existsSync('/dev/shm') ? '/dev/shm' : null;
const SCENARIOS = [
  ...(shm
    ? [
        { label: 'posix_spawn, folders on tmpfs', parent: shm, mode: undefined },
        { label: 'fork, folders on tmpfs', parent: shm, mode: 'fork' },
      ]
    : []),
  { label: `posix_spawn, folders in ${TMPDIR}`, parent: TMPDIR, mode: undefined },
];
if (!shm) log('no /dev/shm: the two tmpfs scenarios are left out');

/** N attempts of `true`, IN_FLIGHT at a time, on one fresh launcher. */
async function scenario({ parent, mode }) {
  const env = mode ? { ...process.env, FANOUT_LAUNCHER_SPAWN: mode } : process.env;
  const launcher = Launcher.start({ env });
  const base = mkdtempSync(join(parent, 'fanout-launcher-bench-'));
  let launched = 0;
  let completed = 0;
  let ok = 0;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  try {
    await new Promise((resolveAll) => {
      const next = () => {
        const id = launched++;
        const dir = join(base, String(id));
        launcher.launch({ id, attemptDir: dir, cwd: dir, memoryBytes: null, timeMs: null, graceMs: 1000, env: {}, command: 'true' });
      };
      launcher.onDone((_id, result) => {
        if (result.reason === 'ok') ok++;
        if (++completed === N) resolveAll();
        else if (launched < N) next();
      });
      for (let i = 0; i < Math.min(IN_FLIGHT, N); i++) next();
    });
  } finally {
    await launcher.close();
  }
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  rmSync(base, { recursive: true, force: true });
  return { ok, wallMs, nodeCpuMs: (cpu.user + cpu.system) / 1000 };
}

log(`fanout launcher: ${N} attempts of \`true\`, ${IN_FLIGHT} in flight, ${os.cpus().length} CPUs, Node ${process.version}`);
const rows = [];
let failed = false;
for (const sc of SCENARIOS) {
  log(`  ${sc.label} ...`);
  const r = await scenario(sc);
  if (r.ok !== N) {
    failed = true;
    log(`  ${sc.label}: only ${r.ok} of ${N} attempts ended ok`);
  }
  rows.push([sc.label, f(N / (r.wallMs / 1000), 0), f(r.wallMs / N, 3), f(r.nodeCpuMs / N, 3), `${r.ok}/${N}`]);
}

const header = ['scenario', 'attempts/s', 'ms/attempt', 'coordinator CPU ms/attempt', 'ok'];
process.stdout.write(`| ${header.join(' | ')} |\n| --- | ---: | ---: | ---: | ---: |\n`);
for (const row of rows) process.stdout.write(`| ${row.join(' | ')} |\n`);
if (failed) process.exitCode = 1;
