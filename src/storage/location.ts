import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';

/**
 * Where fanout keeps a workdir or an outdir: a local path, or an `s3://bucket/prefix` URI on
 * any S3-compatible service. Object keys use `/` whatever the local platform.
 */

const SCHEME = 's3://';

export function isObjectStoreUri(location: string): boolean {
  return location.startsWith(SCHEME);
}

/** A location as a job file or an option gives it: a folder relative to `baseDir`, or an object-storage URI as written. */
export function resolveLocation(baseDir: string, location: string): string {
  return isObjectStoreUri(location) ? location : resolve(baseDir, location);
}

/** `s3://b/p` + `a/b` → `s3://b/p/a/b`; local paths are joined as paths. */
export function joinLocation(base: string, ...parts: string[]): string {
  if (!isObjectStoreUri(base)) return join(base, ...parts);
  const segments = [base.replace(/\/+$/, ''), ...parts.map((part) => part.replace(/^\/+|\/+$/g, ''))];
  return segments.filter((segment) => segment !== '').join('/');
}

/** A bucket and the key (or key prefix, without slashes at either end) inside it. */
export interface ObjectAddress {
  bucket: string;
  key: string;
}

export function parseObjectStoreUri(uri: string): ObjectAddress {
  if (!isObjectStoreUri(uri)) {
    throw new UserError(`"${uri}" is not an s3:// URI`, 'write it as s3://bucket/prefix');
  }
  const rest = uri.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const key = slash === -1 ? '' : rest.slice(slash + 1).replace(/^\/+|\/+$/g, '');
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(bucket)) {
    const problem = bucket === '' ? `"${uri}" names no bucket` : `"${uri}" has an invalid bucket name "${bucket}"`;
    throw new UserError(problem, 'write it as s3://bucket/prefix');
  }
  return { bucket, key };
}

export function formatObjectStoreUri(address: ObjectAddress): string {
  return address.key === '' ? `${SCHEME}${address.bucket}` : `${SCHEME}${address.bucket}/${address.key}`;
}
