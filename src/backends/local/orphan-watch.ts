import { isAlive } from '../../process-identity.js';
import { lostResult, readResultRecord } from '../../runner/result-record.js';
import type { ProcessIdentity } from '../../store/records.js';
import type { OrphanAttempt, ResultListener } from '../backend.js';
import { removeLeftContainer } from '../../container/left-containers.js';

const POLL_MS = 250;

/**
 * Attempts launched by a coordinator that died. Their launcher outlives it and still writes
 * their result records; this watches for those records until the launcher is gone, and reports
 * whatever never got one as `lost`.
 */
export class OrphanWatch {
  private readonly waiting = new Map<number, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** The launcher that still runs them; null when it is gone. */
    readonly supervisor: ProcessIdentity | null,
    private readonly onResult: ResultListener,
  ) {}

  add(orphans: OrphanAttempt[]): void {
    for (const orphan of orphans) this.waiting.set(orphan.id, orphan.attemptDir);
    this.check();
  }

  has(id: number): boolean {
    return this.waiting.has(id);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private check = (): void => {
    this.timer = undefined;
    // Read liveness first: a record written just before the launcher exits is then still seen.
    const supervisorAlive = this.supervisor !== null && isAlive(this.supervisor);
    for (const [id, dir] of this.waiting) {
      const result = readResultRecord(dir);
      if (result) {
        this.waiting.delete(id);
        this.onResult(id, result);
      } else if (!supervisorAlive) {
        this.waiting.delete(id);
        // Its processes may outlive the launcher; a container surely does, unless removed.
        removeLeftContainer(dir);
        this.onResult(id, lostResult('the process supervising it ended without recording a result'));
      }
    }
    if (this.waiting.size > 0) this.timer = setTimeout(this.check, POLL_MS);
  };
}
