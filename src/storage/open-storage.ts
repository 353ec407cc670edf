import { FileStorage } from './file-storage.js';
import { isObjectStoreUri, parseObjectStoreUri } from './location.js';
import { LazyS3Storage } from './lazy-s3-storage.js';
import { s3SettingsFromEnvironment } from './s3-settings.js';
import type { Storage } from './storage.js';

const fileStorage = new FileStorage();
/** One S3 storage (so one client and its connection pool) per endpoint, region and addressing. */
const s3Storages = new Map<string, LazyS3Storage>();

/** The storage that serves a location: S3 for `s3://` URIs (configured from the AWS environment), the filesystem otherwise. */
export function storageFor(location: string): Storage {
  if (!isObjectStoreUri(location)) return fileStorage;
  parseObjectStoreUri(location);
  const settings = s3SettingsFromEnvironment();
  const key = JSON.stringify([settings.endpoint, settings.region, settings.forcePathStyle]);
  let storage = s3Storages.get(key);
  if (storage === undefined) {
    storage = new LazyS3Storage(settings);
    s3Storages.set(key, storage);
  }
  return storage;
}
