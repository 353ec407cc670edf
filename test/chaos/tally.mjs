import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// The counts the chaos suite reports: one tally per campaign, printed as a table (rows = counts,
// columns = campaigns). Every row but `trials` should be 0; each is a failure a user would meet.

/** The rows, in print order: key and the label printed. */
const ROWS = [
  ['trials', 'trials'],
  ['tasksLost', 'tasks lost'],
  ['committedRerun', 'committed tasks rerun'],
  ['halfOutputs', 'half outputs taken as done'],
  ['hungRuns', 'hung runs'],
  ['leftBehind', 'processes left behind'],
  ['stackTraces', 'stack traces'],
  ['badInputMishandled', 'bad input mishandled'],
  // Not fanout's: a trial whose harness failed proves nothing, so it must not pass as a 0.
  ['harnessErrors', "harness errors (the suite's own)"],
];

/** A fresh tally: every row 0. */
export function newTally() {
  return Object.fromEntries(ROWS.map(([key]) => [key, 0]));
}

/** Adds one trial's counts into a campaign's tally. */
export function addTrial(tally, counts) {
  tally.trials += 1;
  for (const [key] of ROWS) if (key !== 'trials') tally[key] += counts[key] ?? 0;
}

/** One trial's nonzero counts, for its line in the log ("ok" when there are none). */
export function trialSummary(counts) {
  const bad = Object.entries(counts).filter(([, n]) => n > 0);
  return bad.length ? bad.map(([k, n]) => `${k}=${n}`).join(' ') : 'ok';
}

/** True when some row other than `trials` is nonzero in some campaign. */
export function anyFailure(tallies) {
  return Object.values(tallies).some((tally) => ROWS.some(([key]) => key !== 'trials' && tally[key] > 0));
}

/** The table as text: one column per campaign, and a total. */
export function formatTable(tallies) {
  const campaigns = Object.keys(tallies);
  const header = ['', ...campaigns, 'total'];
  const lines = ROWS.map(([key, label]) => {
    const values = campaigns.map((c) => tallies[c][key]);
    return [label, ...values.map(String), String(values.reduce((a, b) => a + b, 0))];
  });
  const rows = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
  return [line(header), `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`, ...lines.map(line)].join('\n');
}

/** The tallies of the trials recorded in `<dir>/<campaign>/<trial>.json`, over several dirs. */
export function tallyRecorded(dirs) {
  const tallies = {};
  for (const dir of dirs) {
    for (const campaign of readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory())) {
      tallies[campaign.name] ??= newTally();
      const folder = join(dir, campaign.name);
      for (const file of readdirSync(folder).filter((f) => f.endsWith('.json'))) {
        addTrial(tallies[campaign.name], JSON.parse(readFileSync(join(folder, file), 'utf8')).counts);
      }
    }
  }
  return tallies;
}
