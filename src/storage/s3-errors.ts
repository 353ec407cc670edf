import { UserError } from '../errors.js';
import { UNREACHABLE_SOCKET_CODES } from '../network-errors.js';
import { formatDuration } from '../job/units.js';

/**
 * The one place S3 failures become fanout errors. The mistakes a user can fix (endpoint,
 * credentials, bucket) become one-line UserErrors naming the service or bucket and the fix,
 * with the SDK error kept as `cause`; anything else is passed on unchanged. Messages are built
 * only from the endpoint, bucket and error code, never from credentials.
 */

/** What an S3 operation was aimed at, for messages. */
export interface S3Target {
  /** The endpoint URL (no user:password) or `AWS S3`. */
  service: string;
  bucket: string;
  /** How long the operation was tried again through transient errors before this one; 0 or absent: it was not. */
  retriedForMs?: number;
}

const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'timed out',
  TimeoutError: 'timed out',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPROTO: 'protocol error; is it http or https?',
};

const REFUSED_CREDENTIALS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired']);

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The UserError this failure means, or the failure itself when it is not the user's to fix. */
export function explainS3Error(error: unknown, target: S3Target): unknown {
  if (error instanceof UserError || typeof error !== 'object' || error === null) return error;
  const { name = '', code = '', $metadata } = error as SdkError;
  const status = $metadata?.httpStatusCode;
  const bucketUri = `s3://${target.bucket}`;
  const unreachable = UNREACHABLE[code] ?? UNREACHABLE[name];
  if (unreachable !== undefined) {
    const retried = target.retriedForMs ?? 0;
    if (retried < 1000)
      return new UserError(`cannot reach S3 at ${target.service} (${unreachable})`, 'check AWS_ENDPOINT_URL and that the service is up', { cause: error });
    return new UserError(
      `cannot reach S3 at ${target.service} (${unreachable}), still after ${formatDuration(retried)} of retries`,
      'check AWS_ENDPOINT_URL and that the service is up (FANOUT_S3_PATIENCE sets how long fanout keeps trying)',
      { cause: error },
    );
  }
  if (name === 'CredentialsProviderError') {
    return new UserError(`found no S3 credentials for ${bucketUri}`, 'set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE', { cause: error });
  }
  if (REFUSED_CREDENTIALS.has(name) || status === 403) {
    const why = REFUSED_CREDENTIALS.has(name) ? name : `HTTP ${status}`;
    return new UserError(`S3 refused the credentials for ${bucketUri} (${why})`, 'check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE', { cause: error });
  }
  if (name === 'NoSuchBucket') {
    return new UserError(`bucket "${target.bucket}" does not exist at ${target.service}`, 'create it or fix the s3:// URI', { cause: error });
  }
  return error;
}

/** Socket and stream errors that say the service is out of reach for now, not that the call was wrong. */
const TRANSIENT_CODES = new Set([
  ...UNREACHABLE_SOCKET_CODES,
  // A download cut off when the server went away mid-body.
  'ERR_STREAM_PREMATURE_CLOSE',
]);
/** S3's own words for "busy or briefly broken, try again". */
const TRANSIENT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'SlowDown', 'ServiceUnavailable', 'InternalError', 'ThrottlingException']);

/**
 * True for a failure that passes by itself (the service down or restarting, a network blip,
 * throttling, a 5xx answer), worth trying again; false for one that will fail the same way again
 * (no such bucket, refused credentials, any other 4xx), which should be reported at once.
 */
export function isTransientS3Error(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e !== null && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof UserError) return false;
    const { name = '', code = '', $metadata } = e as SdkError;
    const status = $metadata?.httpStatusCode;
    if (TRANSIENT_CODES.has(code) || TRANSIENT_NAMES.has(name)) return true;
    if (status !== undefined) return status === 429 || status >= 500;
    // Node 20 tries every address of a host name and reports all the refusals at once.
    if (e instanceof AggregateError && e.errors.some(isTransientS3Error)) return true;
  }
  return false;
}

/** True when S3 says the object is not there (and not because the bucket is missing). */
export function isAbsentObject(error: unknown): boolean {
  const { name, $metadata } = (error ?? {}) as SdkError;
  return name === 'NoSuchKey' || (name !== 'NoSuchBucket' && $metadata?.httpStatusCode === 404);
}

/** True when a ranged read starts at or past the end of the object. */
export function isRangeNotSatisfiable(error: unknown): boolean {
  const { name, $metadata } = (error ?? {}) as SdkError;
  return name === 'InvalidRange' || $metadata?.httpStatusCode === 416;
}
