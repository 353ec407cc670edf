import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Whether this process may mount (a tmpfs, a read-only bind): read-only and full disks are real
 * in the tests that need them (root writes through any permission bits, and runs the tests here
 * and in CI). Where it may not, those tests are skipped, not faked.
 */
export const canMount = (() => {
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
})();
