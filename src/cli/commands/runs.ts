import type { Command } from 'commander';
import { formatDuration } from '../../job/units.js';
import { withReadOnlyEngine, type GlobalOptions } from '../cli-context.js';
import { statusJson } from '../../run-json.js';
import { table } from '../output.js';

export function registerRuns(program: Command): void {
  program
    .command('runs')
    .description('every run, newest first')
    .option('--json', 'print as JSON')
    .action((options: GlobalOptions & { json?: boolean }) =>
      withReadOnlyEngine(options, async (engine) => {
        const runs = [];
        const records = await engine.store.listRuns();
        const unattended = await engine.unattended(records);
        for (const run of records) runs.push(statusJson(run, await engine.store.counts(run.id), unattended.get(run.id) ?? null));
        if (options.json) {
          process.stdout.write(`${JSON.stringify(runs)}\n`);
          return;
        }
        const rows = runs.map((r) => [
          String(r.run),
          r.job,
          r.backend,
          r.unattended ? `${r.state} (unattended)` : r.state,
          `${r.counts.succeeded + r.counts.skipped}/${r.total}`,
          String(r.counts.failed),
          r.createdAt.replace('T', ' ').slice(0, 19),
          formatDuration((r.endedAt ? Date.parse(r.endedAt) : Date.now()) - Date.parse(r.createdAt)),
        ]);
        process.stdout.write(`${table(['RUN', 'JOB', 'BACKEND', 'STATE', 'DONE', 'FAILED', 'STARTED (UTC)', 'DURATION'], rows)}\n`);
        for (const r of runs)
          if (r.unattended) process.stdout.write(`run ${r.run}: nothing drives it (${r.unattended.why}); resume it with \`${r.unattended.resume}\`\n`);
      }),
    );
}
