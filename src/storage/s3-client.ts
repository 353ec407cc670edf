import { S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from './s3-settings.js';

const DEFAULT_REGION = 'us-east-1';
// Retries are few and connecting is given little time, so an unreachable endpoint is reported
// within seconds rather than after the SDK's long default backoff.
const MAX_ATTEMPTS = 3;
const CONNECTION_TIMEOUT_MS = 2_000;

export function createS3Client(settings: S3Settings): S3Client {
  return withoutNodeSupportWarning(
    () =>
      new S3Client({
        ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
        region: settings.region ?? profileRegionOrDefault,
        forcePathStyle: settings.forcePathStyle,
        ...(settings.credentials === undefined ? {} : { credentials: settings.credentials }),
        maxAttempts: MAX_ATTEMPTS,
        requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS },
      }),
  );
}

/** The SDK's own switch for its Node-version warning (read by @aws-sdk/core's emitWarningIfUnsupportedVersion). */
const NODE_SUPPORT_WARNING_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * Build a client without the 8-line NodeVersionSupportWarning the SDK prints under Node 20 (its
 * releases after January 2027 will need Node 22): fanout pins a release that supports Node 20,
 * so the warning would only be noise in every command's output. The SDK checks its switch once,
 * while the first client is built, and then never warns again; the switch is set only for that
 * moment, so no command fanout runs later (a task, a notify command) inherits it, and a value
 * the user set stands. Every other warning and error of the SDK is untouched.
 */
function withoutNodeSupportWarning<T>(build: () => T): T {
  const before = process.env[NODE_SUPPORT_WARNING_SWITCH];
  process.env[NODE_SUPPORT_WARNING_SWITCH] = before ?? 'true';
  try {
    return build();
  } finally {
    if (before === undefined) delete process.env[NODE_SUPPORT_WARNING_SWITCH];
  }
}

/** The region the SDK finds by itself (AWS_REGION, then the profile), or us-east-1 where it finds none. */
async function profileRegionOrDefault(): Promise<string> {
  try {
    return await new S3Client({}).config.region();
  } catch {
    return DEFAULT_REGION;
  }
}
