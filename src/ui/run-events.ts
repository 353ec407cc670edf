import type { ServerResponse } from 'node:http';
import type { Engine } from '../engine/engine.js';
import { statusJson } from '../cli/output.js';

/**
 * A run's status pushed as server-sent events whenever it changes. The store is polled, not
 * the engine: the run may be driven by another fanout, or by pull workers on other machines
 * that share only the store.
 */
export const EVENT_POLL_MS = 1000;
/** A comment now and then keeps proxies from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;

export function streamRunStatus(engine: Engine, runId: number, response: ServerResponse, pollMs = EVENT_POLL_MS): void {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  let last = '';
  let lastWrite = Date.now();
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const poll = async () => {
    try {
      const run = await engine.store.getRun(runId);
      if (closed || !run) return;
      const status = JSON.stringify(statusJson(run, await engine.store.counts(runId)));
      if (status !== last) {
        last = status;
        lastWrite = Date.now();
        response.write(`event: status\ndata: ${status}\n\n`);
      } else if (Date.now() - lastWrite >= KEEPALIVE_MS) {
        lastWrite = Date.now();
        response.write(': still here\n\n');
      }
    } catch (error) {
      response.write(`event: problem\ndata: ${JSON.stringify({ error: String((error as Error)?.message ?? error) })}\n\n`);
    }
    if (!closed) timer = setTimeout(poll, pollMs);
  };
  response.on('close', () => {
    closed = true;
    clearTimeout(timer);
  });
  void poll();
}
