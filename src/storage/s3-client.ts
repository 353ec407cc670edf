import { S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from './s3-settings.js';

const DEFAULT_REGION = 'us-east-1';
// Retries are few and connecting is given little time, so an unreachable endpoint is reported
// within seconds rather than after the SDK's long default backoff.
const MAX_ATTEMPTS = 3;
const CONNECTION_TIMEOUT_MS = 2_000;

export function createS3Client(settings: S3Settings): S3Client {
  // The SDK warns on every run under Node 20 that its future releases will need Node 22; fanout
  // pins a release that supports 20, so the warning would only be noise in fanout's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    region: settings.region ?? profileRegionOrDefault,
    forcePathStyle: settings.forcePathStyle,
    ...(settings.credentials === undefined ? {} : { credentials: settings.credentials }),
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS },
  });
}

/** The region the SDK finds by itself (AWS_REGION, then the profile), or us-east-1 where it finds none. */
async function profileRegionOrDefault(): Promise<string> {
  try {
    return await new S3Client({}).config.region();
  } catch {
    return DEFAULT_REGION;
  }
}
