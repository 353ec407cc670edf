import { setTimeout as sleep } from 'node:timers/promises';

/**
 * POST one alert to a webhook: JSON, a time limit per try, and a few tries with growing pauses
 * between them when the failure may pass (no answer, a 5xx, 408 or 429). A failure is a result,
 * never an exception: an alert that cannot be delivered must not touch the run.
 */

export interface WebhookOptions {
  /** Aborts the delivery (its current try and any pause), e.g. when the process must exit. */
  signal: AbortSignal;
  tries?: number;
  tryTimeoutMs?: number;
  /** The pause after the first failed try; it doubles after each further one. */
  firstPauseMs?: number;
}

export type WebhookOutcome = { delivered: true; tries: number; status: number } | { delivered: false; tries: number; error: string };

const WEBHOOK_TRIES = 4;
const WEBHOOK_TRY_TIMEOUT_MS = 10_000;
const WEBHOOK_FIRST_PAUSE_MS = 1_000;

export async function postWebhook(url: string, body: string, options: WebhookOptions): Promise<WebhookOutcome> {
  const tries = options.tries ?? WEBHOOK_TRIES;
  let pause = options.firstPauseMs ?? WEBHOOK_FIRST_PAUSE_MS;
  let error = 'not tried';
  for (let attempt = 1; attempt <= tries; attempt++) {
    if (attempt > 1) {
      try {
        await sleep(pause, undefined, { signal: options.signal });
      } catch {
        return { delivered: false, tries: attempt - 1, error: `${error}; gave up: ${abortReason(options.signal)}` };
      }
      pause *= 2;
    }
    const tried = await tryOnce(url, body, options);
    if (tried.ok) return { delivered: true, tries: attempt, status: tried.status };
    error = tried.error;
    if (!tried.passing) return { delivered: false, tries: attempt, error };
  }
  return { delivered: false, tries, error };
}

type TryOutcome = { ok: true; status: number } | { ok: false; error: string; passing: boolean };

async function tryOnce(url: string, body: string, options: WebhookOptions): Promise<TryOutcome> {
  const timeoutMs = options.tryTimeoutMs ?? WEBHOOK_TRY_TIMEOUT_MS;
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'fanout' },
      body,
      redirect: 'follow',
      signal: AbortSignal.any([options.signal, AbortSignal.timeout(timeoutMs)]),
    });
    // Read the body so the connection is released; its content does not matter.
    await response.arrayBuffer().catch(() => undefined);
    if (response.ok) return { ok: true, status: response.status };
    const passing = response.status >= 500 || response.status === 408 || response.status === 429;
    return { ok: false, error: `it answered ${response.status} ${response.statusText}`.trim(), passing };
  } catch (error) {
    if (options.signal.aborted) return { ok: false, error: `gave up: ${abortReason(options.signal)}`, passing: false };
    const failure = error as Error & { cause?: { code?: string; message?: string } };
    if (failure.name === 'TimeoutError') return { ok: false, error: `no answer within ${timeoutMs / 1000}s`, passing: true };
    const cause = failure.cause?.code ?? failure.cause?.message ?? failure.message;
    return { ok: false, error: `it cannot be reached (${cause})`, passing: true };
  }
}

function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'stopped';
}

/** What a log may say of a webhook: its origin. The path and query often carry a secret token. */
export function webhookOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'the webhook';
  }
}
