import { s3PatienceMs } from './s3-patience.js';

/**
 * How fanout reaches S3. Everything comes from the standard AWS environment and profile chain,
 * so the settings that work for the aws CLI work here, and fanout has no S3 flags of its own:
 *
 * - Endpoint: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (ignored when
 *   AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true). With neither, AWS S3 itself (the SDK may still
 *   take an `endpoint_url` from the profile).
 * - Region: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's `region`, else us-east-1.
 * - Credentials: the SDK's default provider chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
 *   AWS_PROFILE and the ~/.aws files, SSO, web identity, instance roles). fanout never reads,
 *   prints or stores them.
 * - Addressing: path-style (`endpoint/bucket/key`) when AWS_S3_FORCE_PATH_STYLE is `true` or
 *   `1`, and by default whenever a custom endpoint is set, because S3-compatible servers (MinIO,
 *   Ceph, Garage, s3rver) seldom serve bucket-named subdomains; AWS_S3_FORCE_PATH_STYLE=false
 *   turns it off. Virtual-hosted style otherwise, as AWS prefers.
 * - Patience: FANOUT_S3_PATIENCE (default 60s, `0` for none) is how long a call keeps trying
 *   through transient errors (s3-patience.ts); a check of a location never waits.
 * - Checksums: the SDK's defaults. A server that rejects them wants
 *   AWS_REQUEST_CHECKSUM_CALCULATION=when_required (the SDK reads it itself).
 *
 * This file does not load the AWS SDK (s3-client.ts does), so runs that never touch S3 skip its
 * startup cost.
 */
export interface S3Settings {
  /** A custom endpoint URL; undefined for AWS S3. */
  endpoint: string | undefined;
  /** undefined: the profile's region, else us-east-1. */
  region: string | undefined;
  forcePathStyle: boolean;
  /** How long a call keeps trying through transient errors (FANOUT_S3_PATIENCE, default 60s; see s3-patience.ts). */
  patienceMs: number;
  /** Fixed credentials instead of the default chain (tests that need wrong ones). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export function s3SettingsFromEnvironment(env: NodeJS.ProcessEnv = process.env): S3Settings {
  const ignoreEndpoints = env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?.toLowerCase() === 'true';
  const endpoint = ignoreEndpoints ? undefined : env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const pathStyle = env.AWS_S3_FORCE_PATH_STYLE?.toLowerCase();
  return {
    endpoint,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined,
    forcePathStyle: pathStyle === undefined || pathStyle === '' ? endpoint !== undefined : pathStyle === 'true' || pathStyle === '1',
    patienceMs: s3PatienceMs(env),
  };
}

/** How messages name the service: the endpoint without any user:password part, or AWS S3. */
export function describeS3Service(settings: S3Settings): string {
  if (settings.endpoint === undefined) return 'AWS S3';
  try {
    const url = new URL(settings.endpoint);
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return settings.endpoint;
  }
}
