// Preloaded into fanout's coordinator by bench/run.mjs (`node --import <this file> bin/fanout.js ...`)
// for the scale run only. It counts what fanout writes to its SQLite store without touching
// fanout's source: better-sqlite3's Statement#run is wrapped to count
//   - commits: COMMIT statements run by db.transaction(), plus write statements run outside a
//     transaction (each of those is its own autocommit transaction);
//   - rowChanges: the `changes` reported by every write statement (INSERT/UPDATE/UPSERT rows);
//   - runCalls and storeMs: how many Statement#run calls there were and the time spent in them
//     (BEGIN/COMMIT included, so fsyncs and WAL writes are in it).
// With them, the coordinator's own CPU time and peak RSS (process.resourceUsage(), children
// excluded). The figures are written as JSON to $BENCH_STORE_PROBE_OUT when the process exits.
// Overhead: one closure call and two hrtime reads per statement, well under a microsecond.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const Database = require('better-sqlite3');

const stats = { commits: 0, autocommits: 0, rowChanges: 0, runCalls: 0, storeMs: 0 };

const scratch = new Database(':memory:');
const Statement = Object.getPrototypeOf(scratch.prepare('SELECT 1'));
scratch.close();

const originalRun = Statement.run;
Statement.run = function run(...args) {
  const inTransaction = this.database.inTransaction;
  const started = process.hrtime.bigint();
  try {
    const result = originalRun.apply(this, args);
    stats.runCalls++;
    if (this.source === 'COMMIT') stats.commits++;
    else if (!this.reader && result && typeof result.changes === 'number') {
      stats.rowChanges += result.changes;
      if (!inTransaction && !/^\s*(BEGIN|SAVEPOINT|RELEASE|ROLLBACK)/i.test(this.source)) stats.autocommits++;
    }
    return result;
  } finally {
    stats.storeMs += Number(process.hrtime.bigint() - started) / 1e6;
  }
};

process.on('exit', () => {
  const out = process.env.BENCH_STORE_PROBE_OUT;
  if (!out) return;
  // The coordinator's own figures (children excluded): CPU time and peak RSS (getrusage maxrss).
  const usage = process.resourceUsage();
  stats.coordinatorCpuMs = (usage.userCPUTime + usage.systemCPUTime) / 1000;
  stats.coordinatorMaxRssKiB = usage.maxRSS;
  writeFileSync(out, JSON.stringify(stats));
});
