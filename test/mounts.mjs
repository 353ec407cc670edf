import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Whether this process may mount (a tmpfs, a read-only bind): read-only and full disks are real
 * in the tests and chaos cases that need them (root writes through any permission bits, and runs
 * them here and in CI). Where it may not, those cases are skipped, not faked. Plain ESM, so the
 * chaos suite (no build) and the vitest suites share this one check.
 */
export function mayMount() {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-mount-check-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
