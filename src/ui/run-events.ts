import type { ServerResponse } from 'node:http';
import type { Engine } from '../engine/engine.js';
import { statusJson } from '../run-json.js';

/**
 * A run's status pushed as server-sent events whenever it changes. The store is polled, not
 * the engine: the run may be driven by another fanout, or by pull workers on other machines
 * that share only the store. However many pages watch a run, the store is read once per poll.
 */
const EVENT_POLL_MS = 1000;
/** A comment now and then keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

interface Watch {
  streams: Set<ServerResponse>;
  last: string;
  lastWrite: number;
  timer?: NodeJS.Timeout;
}

export class RunEvents {
  private readonly watches = new Map<number, Watch>();

  constructor(
    private readonly engine: Engine,
    private readonly pollMs = EVENT_POLL_MS,
  ) {}

  /** Stream the run's status to this response until the client goes away. */
  stream(runId: number, response: ServerResponse): void {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    let watch = this.watches.get(runId);
    const first = !watch;
    if (!watch) {
      watch = { streams: new Set(), last: '', lastWrite: Date.now() };
      this.watches.set(runId, watch);
    }
    watch.streams.add(response);
    // A newcomer gets the current status at once; the others only when it changes.
    if (watch.last) response.write(`event: status\ndata: ${watch.last}\n\n`);
    response.on('close', () => {
      watch.streams.delete(response);
      if (watch.streams.size === 0) {
        clearTimeout(watch.timer);
        this.watches.delete(runId);
      }
    });
    if (first) void this.poll(runId, watch);
  }

  private async poll(runId: number, watch: Watch): Promise<void> {
    try {
      const run = await this.engine.store.getRun(runId);
      if (run) {
        const status = JSON.stringify(statusJson(run, await this.engine.store.counts(runId), (await this.engine.unattended([run])).get(runId) ?? null));
        if (status !== watch.last) {
          watch.last = status;
          this.send(watch, `event: status\ndata: ${status}\n\n`);
        } else if (Date.now() - watch.lastWrite >= KEEPALIVE_MS) {
          this.send(watch, ': still here\n\n');
        }
      }
    } catch (error) {
      this.send(watch, `event: problem\ndata: ${JSON.stringify({ error: String((error as Error)?.message ?? error) })}\n\n`);
    }
    if (this.watches.get(runId) === watch) watch.timer = setTimeout(() => void this.poll(runId, watch), this.pollMs);
  }

  private send(watch: Watch, text: string): void {
    watch.lastWrite = Date.now();
    for (const response of watch.streams) response.write(text);
  }
}
