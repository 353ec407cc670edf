// Small helpers both benchmarks (run.mjs, slurm.mjs) use.

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
