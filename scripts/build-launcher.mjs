#!/usr/bin/env node
// Compiles native/launcher.c into native/build/fanout-launcher. It runs at install time
// (`npm run build`) and on demand from src/runner/launcher-binary.ts, possibly from several test
// workers at once, hence the compile-to-temp-then-rename.
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'launcher.c');
const outDir = join(root, 'native', 'build');
const binary = join(outDir, 'fanout-launcher');

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

function fail(why) {
  console.error(
    `fanout: could not build its process launcher with \`${compiler.join(' ')}\` (${why}): ` +
      'install a C compiler (Debian: apt-get install gcc) and run `npm run build`',
  );
  process.exit(1);
}

// `CC` may carry a wrapper or flags, as in `ccache gcc`.
const compiler = (process.env.CC ?? '').trim().split(/\s+/).filter(Boolean);
if (compiler.length === 0) compiler.push('cc');

const built = mtime(binary);
const written = mtime(source);
if (written === null) fail(`${source} is missing`);
if (built !== null && built >= written) process.exit(0);

mkdirSync(outDir, { recursive: true });
const temp = `${binary}.tmp-${process.pid}`;
const [command, ...preArgs] = compiler;
const result = spawnSync(command, [...preArgs, '-O2', '-Wall', '-Wextra', '-o', temp, source], {
  stdio: ['ignore', 'inherit', 'inherit'],
});
if (result.error || result.status !== 0) {
  rmSync(temp, { force: true });
  const code = /** @type {NodeJS.ErrnoException | undefined} */ (result.error)?.code;
  fail(code === 'ENOENT' ? 'not found' : result.error ? result.error.message : result.signal ? `killed by ${result.signal}` : `exit code ${result.status}`);
}
renameSync(temp, binary);
