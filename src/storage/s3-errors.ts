import { UserError } from '../errors.js';

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
    return new UserError(`cannot reach S3 at ${target.service} (${unreachable})`, 'check AWS_ENDPOINT_URL and that the service is up', { cause: error });
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
