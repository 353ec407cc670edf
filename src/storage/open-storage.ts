import { FileStorage } from './file-storage.js';
import { isObjectStoreUri, parseObjectStoreUri } from './location.js';
import { LazyS3Storage } from './lazy-s3-storage.js';
import { s3SettingsFromEnvironment } from './s3-settings.js';
import type { ByteRange, Storage, StoredBytes, StoredObject } from './storage.js';

const fileStorage = new FileStorage();
/** One S3 storage (so one client and its connection pool) per endpoint, region, addressing and patience. */
const s3Storages = new Map<string, LazyS3Storage>();

/** The storage that serves a location: S3 for `s3://` URIs (configured from the AWS environment), the filesystem otherwise. */
export function storageFor(location: string): Storage {
  if (!isObjectStoreUri(location)) return fileStorage;
  parseObjectStoreUri(location);
  const settings = s3SettingsFromEnvironment();
  const key = JSON.stringify([settings.endpoint, settings.region, settings.forcePathStyle, settings.patienceMs]);
  let storage = s3Storages.get(key);
  if (storage === undefined) {
    storage = new LazyS3Storage(settings);
    s3Storages.set(key, storage);
  }
  return storage;
}

/**
 * The one storage a process hands to whatever reads or writes a run's files: it serves every
 * location, folders and `s3://` alike, by passing each call to the storage that serves the
 * location it names (for a copy, the stored side). A malformed `s3://` URI is a rejected call.
 */
export function openStorage(): Storage {
  return everyLocation;
}

class RoutingStorage implements Storage {
  isLocal(location: string): boolean {
    return !isObjectStoreUri(location);
  }
  async putFile(localPath: string, uri: string): Promise<void> {
    return storageFor(uri).putFile(localPath, uri);
  }
  async getFile(uri: string, localPath: string): Promise<void> {
    return storageFor(uri).getFile(uri, localPath);
  }
  async putText(uri: string, text: string): Promise<void> {
    return storageFor(uri).putText(uri, text);
  }
  async getText(uri: string): Promise<string | null> {
    return storageFor(uri).getText(uri);
  }
  async openRead(uri: string, options?: { start?: number }): Promise<NodeJS.ReadableStream | null> {
    return storageFor(uri).openRead(uri, options);
  }
  async readRange(uri: string, range: ByteRange): Promise<StoredBytes | null> {
    return storageFor(uri).readRange(uri, range);
  }
  async exists(uri: string): Promise<boolean> {
    return storageFor(uri).exists(uri);
  }
  async list(prefix: string): Promise<StoredObject[]> {
    return storageFor(prefix).list(prefix);
  }
  async delete(uri: string): Promise<void> {
    return storageFor(uri).delete(uri);
  }
  async deletePrefix(prefix: string): Promise<void> {
    return storageFor(prefix).deletePrefix(prefix);
  }
  async putTree(localDir: string, prefix: string): Promise<number> {
    return storageFor(prefix).putTree(localDir, prefix);
  }
  async getTree(prefix: string, localDir: string): Promise<number> {
    return storageFor(prefix).getTree(prefix, localDir);
  }
  async check(location: string): Promise<void> {
    return storageFor(location).check(location);
  }
}

const everyLocation = new RoutingStorage();
