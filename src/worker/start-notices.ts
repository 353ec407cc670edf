import type { AttemptKey } from '../store/work-queue.js';

type TaskKey = Extract<AttemptKey, { kind: 'task' }>;

/**
 * Tells the store which attempts a worker is about to start, before they start: an attempt reaped
 * without such a notice never ran (it was claimed ahead), so it costs its task nothing. Notices
 * asked for while one is on its way go together in the next, so a burst of short tasks starting
 * at once waits for one round trip, not one each.
 */
export class StartNotices {
  private queued: Array<{ key: TaskKey; settle: (error?: Error) => void }> = [];
  private sending = false;

  constructor(private readonly send: (keys: TaskKey[]) => Promise<void>) {}

  /** Resolves once the store knows `key` started; rejects when it could not be told. */
  note(key: TaskKey): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queued.push({ key, settle: (error) => (error === undefined ? resolve() : reject(error)) });
      if (!this.sending) void this.sendQueued();
    });
  }

  private async sendQueued(): Promise<void> {
    this.sending = true;
    while (this.queued.length > 0) {
      const batch = this.queued.splice(0);
      let failure: Error | undefined;
      try {
        await this.send(batch.map((notice) => notice.key));
      } catch (error) {
        failure = error instanceof Error ? error : new Error(String(error));
      }
      for (const notice of batch) notice.settle(failure);
    }
    this.sending = false;
  }
}
