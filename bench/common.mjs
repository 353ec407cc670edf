// Small helpers the benchmarks (run.mjs, slurm.mjs, workers.mjs) share.
import { existsSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** A flag's value as a positive integer, or exit 2 saying which flag was wrong. */
export function positiveInt(name, raw) {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`bench: ${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Progress goes to stderr; stdout carries the report. */
export const log = (s = '') => process.stderr.write(s + '\n');

/** A number with `d` decimals, or `-` when there is none. */
export const f = (x, d) => (x == null || !Number.isFinite(x) ? '-' : x.toFixed(d));

/** Exit 2 unless `npm run build` has produced dist/; `script` is the npm script that builds first. */
export function requireBuilt(root, script) {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) {
    console.error(`bench: fanout is not built; run \`npm run build\` (or \`npm run ${script}\`, which builds first)`);
    process.exit(2);
  }
}

/** A folder flag's value (default: the OS temp folder) as an absolute path, or exit 2 if it does not exist. */
export function existingDir(flag, raw) {
  const dir = resolve(raw ?? os.tmpdir());
  if (!existsSync(dir)) {
    console.error(`bench: ${flag} ${dir} does not exist`);
    process.exit(2);
  }
  return dir;
}

/** The command line's flags (`options` as for util.parseArgs, plus -h/--help); prints `help` and exits on --help. */
export function benchOptions(options, help) {
  const { values } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h', default: false } }, strict: true });
  if (values.help) {
    process.stdout.write(help);
    process.exit(0);
  }
  return values;
}
