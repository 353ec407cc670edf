import { resolve } from 'node:path';
import { isObjectStoreUri } from '../storage/location.js';

/** A folder relative to `baseDir`, or an object-storage URI as written. */
export function resolveLocation(baseDir: string, location: string): string {
  return isObjectStoreUri(location) ? location : resolve(baseDir, location);
}
