#!/usr/bin/env node
// fanout benchmark: the dashboard at 100,000 tasks. A store holds one run of N tasks (all
// measured: durations, peaks, a tenth failed); a real `fanout ui` serves it; the run page's first
// paint is timed in Debian's headless Chromium, and each kind of table page request over HTTP.
// The goal is under 300 ms for both. Run with `npm run bench:ui` (builds first), or
// `node bench/ui.mjs [--n 100000] [--reps 7]` after a build. See bench/README.md ("Dashboard").
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { f, log, median, positiveInt, requireBuilt } from './common.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = resolve(benchDir, '..');
const CHROMIUM = '/usr/bin/chromium';
const GOAL_MS = 300;

const { values: opts } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    reps: { type: 'string', default: '7' },
    out: { type: 'string', default: join(benchDir, 'out', 'ui.json') },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  process.stdout.write('Usage: node bench/ui.mjs [--n 100000] [--reps 7] [--out bench/out/ui.json]\n');
  process.exit(0);
}
const n = positiveInt('--n', opts.n);
const reps = positiveInt('--reps', opts.reps);
requireBuilt(root, 'bench:ui');

const home = mkdtempSync(join(os.tmpdir(), 'fanout-bench-ui-'));
let ui;
try {
  const runId = await fillStore(home, n);
  const base = await startUi(home);
  const requests = await timeRequests(base, runId, n);
  const paint = existsSync(CHROMIUM) ? await timeFirstPaint(base, runId) : null;
  report(requests, paint);
} finally {
  if (ui) {
    ui.kill('SIGTERM');
    await new Promise((r) => ui.once('exit', r));
  }
  rmSync(home, { recursive: true, force: true });
}

/** One run of n tasks, every one of them run once: a tenth failed, the rest succeeded. */
async function fillStore(dir, count) {
  const { SqliteStore } = await import(join(root, 'dist', 'store', 'sqlite', 'sqlite-store.js'));
  const store = new SqliteStore(join(dir, 'state.db'));
  const started = Date.now();
  const tasks = Array.from({ length: count }, (_, index) => ({
    index,
    name: `sample-${String(index).padStart(6, '0')}`,
    vars: { sample: `s${index}` },
    cacheKey: `k${index}`,
    state: 'pending',
    cpus: 1,
    memory: 4e9,
    timeMs: null,
  }));
  const spec = { name: 'big', file: '/bench/big.yaml', outdir: join(dir, 'out'), workdir: null, gather: null, command: 'true', resources: {} };
  const created = await store.createRun(
    { job: 'big', jobFile: '/bench/big.yaml', spec, backend: 'local', dispatch: 'push', planKey: 'p', tasks, coordinator: null },
    () => false,
  );
  const runId = created.run.id;
  const t0 = Date.now() - 3_600_000;
  for (let from = 0; from < count; from += 5000) {
    const batch = tasks.slice(from, from + 5000);
    await store.commit({
      launches: batch.map((t) => ({
        runId,
        index: t.index,
        attempt: 1,
        dir: join(dir, 'work', String(t.index)),
        cpus: 1,
        memory: 4e9,
        timeMs: null,
        launchedAt: t0 + t.index * 30,
      })),
    });
    await store.commit({
      results: batch.map((t) => {
        const failed = t.index % 10 === 7;
        const startedAt = t0 + t.index * 30;
        return {
          runId,
          index: t.index,
          attempt: 1,
          result: {
            reason: failed ? 'exit' : 'ok',
            exitCode: failed ? 1 : 0,
            signal: null,
            startedAt,
            endedAt: startedAt + 1000 + ((t.index * 7919) % 60_000),
            peakMemory: 3e8 + ((t.index * 104729) % 6e8),
            cpuMs: 900,
            host: `node${t.index % 16}`,
          },
          task: { state: failed ? 'failed' : 'succeeded', memory: 4e9, timeMs: null, retryBase: 0 },
        };
      }),
    });
  }
  await store.commit({ run: { id: runId, state: 'failed', endedAt: Date.now() } });
  await store.close();
  log(`bench: recorded a run of ${count} tasks in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return runId;
}

async function startUi(dir) {
  ui = spawn(process.execPath, [join(root, 'bin', 'fanout.js'), 'ui', '--home', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let printed = '';
  ui.stdout.on('data', (chunk) => (printed += chunk));
  for (let waited = 0; waited < 20_000; waited += 50) {
    const url = /fanout ui: (http:\S+)/.exec(printed)?.[1];
    if (url) return url.replace(/\/$/, '');
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`fanout ui did not print its URL: ${printed}`);
}

/** Each kind of table page, `reps` times interleaved; the median of each. */
async function timeRequests(base, runId, count) {
  const lastPage = Math.floor((count - 1) / 50);
  const kinds = {
    'first page': `tasks?page=0&size=50`,
    'middle page': `tasks?page=${Math.floor(lastPage / 2)}&size=50`,
    'last page': `tasks?page=${lastPage}&size=50`,
    'failed only': `tasks?state=failed&page=10&size=50`,
    'name search': `tasks?q=sample-0999&size=50`,
    'by duration, desc': `tasks?sort=-duration&page=100&size=50`,
    'by peak memory': `tasks?sort=peakMemory&page=0&size=50`,
    'run status': '',
    'plots (cached per status)': 'plots',
  };
  const times = Object.fromEntries(Object.keys(kinds).map((kind) => [kind, []]));
  let firstPlots = null;
  for (let rep = 0; rep < reps + 1; rep++) {
    for (const [kind, path] of Object.entries(kinds)) {
      const started = performance.now();
      const response = await fetch(`${base}/api/runs/${runId}${path ? `/${path}` : ''}`);
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`${kind}: HTTP ${response.status}`);
      // The first round warms the server's statements; it is not counted, but the plots' first
      // computation (reading every attempt) is reported on its own.
      if (rep > 0) times[kind].push(performance.now() - started);
      else if (path === 'plots') firstPlots = performance.now() - started;
    }
  }
  return { ...Object.fromEntries(Object.entries(times).map(([kind, list]) => [kind, median(list)])), 'plots, first computation (once)': firstPlots };
}

/**
 * Open the run page in a fresh browser context `reps` times: first contentful paint (the
 * browser's own measure), and the moment the page has drawn its counts and first table page
 * (the page's own performance mark, ms since the navigation began), the medians of each.
 */
async function timeFirstPaint(base, runId) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const contentful = [];
  const table = [];
  try {
    for (let rep = 0; rep < reps + 1; rep++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${base}/#/runs/${runId}`);
      await page.waitForSelector('#tasks tbody tr[data-task]');
      await page.waitForSelector('#counts [data-state="failed"]');
      const [fcp, ready, resources] = await page.evaluate(() => [
        performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null,
        performance.getEntriesByName('fanout:run-page-shown')[0]?.startTime ?? null,
        performance.getEntriesByType('resource').map((r) => `${r.name.replace(/^http:\/\/[^/]+/, '')} ${r.startTime.toFixed(0)}-${r.responseEnd.toFixed(0)}`),
      ]);
      if (process.env.BENCH_UI_DEBUG) log(`rep ${rep}: fcp ${fcp} ready ${ready}\n  ${resources.join('\n  ')}`);
      if (rep > 0) {
        contentful.push(fcp);
        table.push(ready);
      }
      await context.close();
    }
  } finally {
    await browser.close();
  }
  return { 'first contentful paint': median(contentful.filter((x) => x !== null)), 'counts and task table shown': median(table) };
}

function report(requests, paint) {
  const rows = [...Object.entries(requests).map(([kind, ms]) => ['request', kind, ms]), ...(paint ? Object.entries(paint).map(([kind, ms]) => ['page', kind, ms]) : [])];
  const out = [`fanout dashboard, one run of ${n} tasks, median of ${reps} (ms):`, ''];
  for (const [what, kind, ms] of rows) out.push(`  ${what.padEnd(8)} ${kind.padEnd(34)} ${f(ms, 1).padStart(8)}`);
  if (!paint) out.push(`  page     (skipped: ${CHROMIUM} is missing; apt-get install -y chromium)`);
  const goalRows = rows.filter(([, kind]) => !kind.startsWith('plots'));
  const worst = Math.max(...goalRows.map(([, , ms]) => ms));
  out.push('', `goal: under ${GOAL_MS} ms for the first paint and each table page: ${worst < GOAL_MS ? 'met' : 'NOT met'} (slowest ${f(worst, 1)} ms)`);
  process.stdout.write(`${out.join('\n')}\n`);
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(
    opts.out,
    `${JSON.stringify({ n, reps, requests, paint, goalMs: GOAL_MS, met: worst < GOAL_MS, machine: { cpus: os.cpus().length, node: process.version } }, null, 2)}\n`,
  );
}
