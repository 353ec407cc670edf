import { UserError } from '../errors.js';
import { parseDuration } from '../job/units.js';

/**
 * How an S3 call rides out a passing outage (the service restarting, a network blip, throttling):
 * it is tried again with backoff while its error is transient, for up to the patience, so a
 * worker staging an attempt in or out waits out a 10-second outage instead of failing the
 * attempt. A permanent error (no such bucket, access denied) fails at once.
 */

/** Default of FANOUT_S3_PATIENCE. */
const DEFAULT_S3_PATIENCE_MS = 60_000;
/** Backoff between tries: doubles from the first to the last. */
const FIRST_RETRY_MS = 500;
const LAST_RETRY_MS = 8_000;

/** FANOUT_S3_PATIENCE: how long an S3 call keeps trying through transient errors (a duration, or 0 not to retry). */
export function s3PatienceMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.FANOUT_S3_PATIENCE?.trim();
  if (text === undefined || text === '') return DEFAULT_S3_PATIENCE_MS;
  if (text === '0') return 0;
  const ms = parseDuration(text);
  if (ms === null) throw new UserError(`FANOUT_S3_PATIENCE=${text} is not a duration`, 'set it to a duration such as 30s or 5m, or 0 not to retry');
  return ms;
}

/**
 * `operation`, tried again while it fails with an error `isTransient` accepts and less than
 * `patienceMs` has passed since the first try; the last error is thrown as it is.
 */
export async function rideOutTransient<T>(operation: () => Promise<T>, isTransient: (error: unknown) => boolean, patienceMs: number): Promise<T> {
  const started = Date.now();
  for (let wait = FIRST_RETRY_MS; ; wait = Math.min(wait * 2, LAST_RETRY_MS)) {
    try {
      return await operation();
    } catch (error) {
      const waited = Date.now() - started;
      if (!isTransient(error) || waited >= patienceMs) throw error;
      // Never sleep past the patience: the last try comes as it runs out.
      await new Promise((resolve) => setTimeout(resolve, Math.min(wait, patienceMs - waited)));
    }
  }
}
