import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';

/**
 * Where the compiled launcher lives. The same code runs from `dist/runner/` after `tsc` and from
 * `src/runner/` under vitest, so the package root is found by walking up to package.json rather
 * than by a fixed number of `..`.
 */

let cached: string | undefined;

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`fanout: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

function mtimeMs(path: string): number | null {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

export function launcherPath(): string {
  if (cached !== undefined) return cached;
  const root = packageRoot();
  const binary = join(root, 'native', 'build', 'fanout-launcher');
  const built = mtimeMs(binary);
  const source = mtimeMs(join(root, 'native', 'launcher.c'));
  // A source newer than the binary only happens in a checkout being edited; rebuilding then
  // spares a confusing run of stale native code.
  if (built === null || (source !== null && source > built)) {
    const result = spawnSync(process.execPath, [join(root, 'scripts', 'build-launcher.mjs')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const failed = result.error !== undefined || result.status !== 0;
    if (failed && existsSync(binary)) {
      // Keep going with the older build, but do not hide why the new one failed.
      process.stderr.write(`${result.stderr ?? ''}fanout: using the previous build of ${binary}\n`);
    } else if (failed) {
      const said = `${result.stderr ?? ''}`.split('\n').filter((l) => l.startsWith('fanout:'));
      const why = result.error?.message ?? `exit code ${result.status}`;
      throw new UserError(
        said.pop()?.replace(/^fanout: /, '') ??
          `could not build its process launcher (${why}): install a C compiler (Debian: apt-get install gcc) and run \`npm run build\``,
      );
    }
  }
  cached = binary;
  return binary;
}
