import type { Engine } from '../engine/engine.js';
import type { RunHandle } from '../engine/run-handle.js';
import { UserError } from '../errors.js';
import type { RunRecord } from '../store/records.js';

/**
 * The dashboard's buttons: cancel a run, retry its failed tasks, run its gather. A retry or a
 * gather of a local or cluster run needs a process to drive it: this server drives it in the
 * background and the page follows it through the store like any other run. On the workers
 * backend the tasks (or the gather) are requeued and the workers do the rest.
 */
export class RunActions {
  /** Runs this server drives now (a retry), so a cancel stops them here rather than signalling itself. */
  private readonly driving = new Map<number, RunHandle>();
  private readonly background = new Set<Promise<unknown>>();

  constructor(private readonly engine: Engine) {}

  /** A run this process drives already (`fanout run --ui`): a cancel stops it here. */
  adopt(handle: RunHandle): void {
    if (handle.interrupt !== 'stops') return;
    this.driving.set(handle.run.id, handle);
    void handle.done.finally(() => this.driving.delete(handle.run.id)).catch(() => undefined);
  }

  async cancel(run: RunRecord): Promise<string> {
    const handle = this.driving.get(run.id);
    if (handle) {
      handle.stop();
      return 'stopping';
    }
    return this.engine.cancel(run);
  }

  async retryFailed(run: RunRecord): Promise<string> {
    if (this.driving.has(run.id)) throw new UserError(`run ${run.id} is already being driven by this dashboard`, 'wait for it to finish');
    const counts = await this.engine.store.counts(run.id);
    if (counts.failed === 0) throw new UserError(`run ${run.id} has no failed tasks to retry`);
    const handle = await this.engine.retry(run, { failedOnly: true });
    if (handle.interrupt === 'detaches') {
      // Workers run it; nothing here needs to watch.
      handle.stop();
      return 'requeued';
    }
    this.driving.set(run.id, handle);
    this.track(handle.done.finally(() => this.driving.delete(run.id)));
    return 'retrying';
  }

  async gather(run: RunRecord): Promise<string> {
    if (this.driving.has(run.id)) throw new UserError(`run ${run.id} is already being driven by this dashboard`, 'wait for it to finish');
    await this.engine.checkGather(run);
    // A pull run's gather is run by a worker; this server only watches it, so closing does not wait for it.
    const pulled = run.dispatch === 'pull';
    this.track(this.engine.gather(run), !pulled);
    return pulled ? 'queued' : 'gathering';
  }

  /** Stop what this server drives and wait for it to settle (the store then says `cancelled`). */
  async close(): Promise<void> {
    for (const handle of this.driving.values()) handle.stop();
    await Promise.allSettled([...this.background]);
  }

  private track(work: Promise<unknown>, awaitOnClose = true): void {
    const settled = work.then(
      () => undefined,
      (error: unknown) => process.stderr.write(`fanout ui: ${error instanceof UserError ? error.describe() : ((error as Error)?.stack ?? String(error))}\n`),
    );
    if (!awaitOnClose) return;
    this.background.add(settled);
    void settled.finally(() => this.background.delete(settled));
  }
}
