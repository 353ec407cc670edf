// `npm run chaos`: the chaos suite. Runs fanout as a user would (the built CLI) through the
// campaigns of issue 13 — SIGKILLs of the local coordinator, faults under pull workers over
// PostgreSQL and S3, bad input — and prints one table of counts. Every row but `trials` should
// be 0; the exit code is 1 when one is not. `--quick` is the reduced campaign CI can run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { badInputCampaign } from './bad-input-campaign.mjs';
import { localCampaign } from './local-campaign.mjs';
import { addTrial, anyFailure, formatTable, newTally, tallyRecorded } from './tally.mjs';
import { ROOT } from './trial.mjs';
import { WORKER_FAULTS, workersCampaign } from './workers-campaign.mjs';

const HELP = `usage: npm run chaos -- [--quick] [--only local,workers,bad-input] [--tmpdir DIR] [--keep]

  --quick      the reduced campaign (a few minutes on 2 cores): fewer trials and tasks
  --only       run only these campaigns (comma-separated)
  --tmpdir     where the trials' temp folders go (default: the system temp folder)
  --keep       keep every trial's folder (failed trials' folders are always kept, less their 1 MB outputs)
  --tally DIR  run nothing: print the table of the trials recorded under DIR (bench/out/chaos-...),
               e.g. of a campaign that was cut off; several DIRs comma-separated
  --faults F,...  the worker campaign's faults only (${WORKER_FAULTS.join(', ')})
  --local-trials N, --local-tasks N, --worker-tasks N, --worker-kills N   override the campaign sizes

Per-trial details go to bench/out/chaos-<time>/<campaign>/<trial>.json, the table to summary.json there.`;

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: process.env.FANOUT_CHAOS_QUICK === '1' },
    only: { type: 'string', default: 'local,workers,bad-input' },
    tmpdir: { type: 'string', default: tmpdir() },
    keep: { type: 'boolean', default: false },
    tally: { type: 'string' },
    faults: { type: 'string', default: WORKER_FAULTS.join(',') },
    'local-trials': { type: 'string' },
    'local-tasks': { type: 'string' },
    'worker-tasks': { type: 'string' },
    'worker-kills': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  console.log(HELP);
  process.exit(0);
}
if (opts.tally !== undefined) {
  const tallies = tallyRecorded(opts.tally.split(','));
  console.log(formatTable(tallies));
  process.exit(anyFailure(tallies) ? 1 : 0);
}
const only = opts.only.split(',').map((s) => s.trim());
for (const name of only) {
  if (!['local', 'workers', 'bad-input'].includes(name)) {
    console.error(`chaos: --only takes local, workers and bad-input, not ${JSON.stringify(name)}`);
    process.exit(2);
  }
}
const faults = opts.faults.split(',').map((s) => s.trim());
for (const fault of faults) {
  if (!WORKER_FAULTS.includes(fault)) {
    console.error(`chaos: --faults takes ${WORKER_FAULTS.join(', ')}, not ${JSON.stringify(fault)}`);
    process.exit(2);
  }
}
const size = (name, quick, full) => {
  const given = opts[name];
  if (given === undefined) return opts.quick ? quick : full;
  const n = Number(given);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`chaos: --${name} takes a positive whole number, not ${JSON.stringify(given)}`);
    process.exit(2);
  }
  return n;
};

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outRoot = join(ROOT, 'bench', 'out', `chaos-${stamp}`);
mkdirSync(outRoot, { recursive: true });
const log = (line) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const common = { outRoot, tmpRoot: opts.tmpdir, log, keep: opts.keep, quick: opts.quick };
const startedAt = Date.now();
log(`chaos suite (${opts.quick ? 'quick' : 'full'}): details in ${outRoot}`);

const tallies = {};
/** Runs one campaign into its column; a campaign that could not run at all is a harness error. */
const campaign = async (name, run) => {
  tallies[name] = newTally();
  try {
    for (const counts of await run()) addTrial(tallies[name], counts);
  } catch (error) {
    tallies[name].harnessErrors += 1;
    log(`${name}: the campaign could not run: ${error?.stack ?? error}`);
  }
};

if (only.includes('local')) {
  await campaign('local', () => localCampaign({ ...common, trials: size('local-trials', 4, 28), tasks: size('local-tasks', 40, 200), resumeTimeoutMs: 10 * 60_000 }));
}
if (only.includes('workers')) {
  await campaign('workers', () => workersCampaign({ ...common, faults, tasks: size('worker-tasks', 24, 60), kills: size('worker-kills', 3, 12) }));
}
if (only.includes('bad-input')) {
  await campaign('bad-input', () => badInputCampaign(common));
}

const table = formatTable(tallies);
const wallS = Math.round((Date.now() - startedAt) / 1000);
writeFileSync(join(outRoot, 'summary.json'), `${JSON.stringify({ mode: opts.quick ? 'quick' : 'full', wallS, tallies }, null, 2)}\n`);
console.log(`\n${table}\n\n${opts.quick ? 'quick' : 'full'} campaign, ${wallS} s; details in ${outRoot}`);
process.exit(anyFailure(tallies) ? 1 : 0);
