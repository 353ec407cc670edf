import { afterEach, describe, expect, it } from 'vitest';
import { WebhookReceiver } from '../../test/webhook-receiver.js';
import { runAlertCommand } from './command-delivery.js';
import { postWebhook, webhookOrigin } from './webhook-delivery.js';

describe('webhook delivery', () => {
  let hook: WebhookReceiver | undefined;
  afterEach(async () => hook?.close());
  const signal = new AbortController().signal;

  it('tries again after a 5xx or 429, with the JSON body each time', async () => {
    hook = await WebhookReceiver.start({ answers: [503, 429] });
    const outcome = await postWebhook(hook.url(), '{"event":"finished"}', { signal, firstPauseMs: 10 });
    expect(outcome).toEqual({ delivered: true, tries: 3, status: 200 });
    expect(hook.received.map((r) => [r.answered, r.body.event, r.headers['content-type']])).toEqual([
      [503, 'finished', 'application/json'],
      [429, 'finished', 'application/json'],
      [200, 'finished', 'application/json'],
    ]);
  });

  it('does not try again after a 4xx that will not change, and gives up after its tries', async () => {
    hook = await WebhookReceiver.start({ answers: [404, 500, 500, 500] });
    expect(await postWebhook(hook.url(), '{}', { signal, firstPauseMs: 10 })).toEqual({ delivered: false, tries: 1, error: 'it answered 404 Not Found' });
    expect(await postWebhook(hook.url(), '{}', { signal, firstPauseMs: 10, tries: 3 })).toEqual({
      delivered: false,
      tries: 3,
      error: 'it answered 500 Internal Server Error',
    });
  });

  it('is stopped by its signal', async () => {
    hook = await WebhookReceiver.start({ hang: true });
    const stop = new AbortController();
    const delivery = postWebhook(hook.url(), '{}', { signal: stop.signal });
    stop.abort(new Error('exiting'));
    expect(await delivery).toEqual({ delivered: false, tries: 1, error: 'gave up: exiting' });
  });

  it('names a webhook by its origin, never its path', () => {
    expect(webhookOrigin('https://hooks.example.org/services/T0/B0/secret?token=x')).toBe('https://hooks.example.org');
  });
});

describe('command delivery', () => {
  const options = { signal: new AbortController().signal, cwd: process.cwd(), env: { FANOUT_EVENT: 'failed' } };

  it('hands the summary on stdin, with the event in the environment', async () => {
    const outcome = await runAlertCommand('read line; test "$line" = "{\\"n\\":1}" && test "$FANOUT_EVENT" = failed', '{"n":1}\n', options);
    expect(outcome).toEqual({ delivered: true });
  });

  it('says how a failing command ended and what it said last', async () => {
    expect(await runAlertCommand('cat > /dev/null; echo first >&2; echo "last words" >&2; exit 9', '{}', options)).toEqual({
      delivered: false,
      error: 'it exited with 9; its stderr ends: first / last words',
    });
  });

  it('stops a command past its time limit, with what it started', async () => {
    const outcome = await runAlertCommand('sleep 30 & wait', '{}', { ...options, timeLimitMs: 300 });
    expect(outcome).toEqual({ delivered: false, error: 'it ran longer than its limit of 0.3s' });
  });

  it('is not bothered by a command that does not read its stdin', async () => {
    expect(await runAlertCommand('exit 0', 'x'.repeat(1 << 20), options)).toEqual({ delivered: true });
  });
});
