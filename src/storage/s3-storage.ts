import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { UserError } from '../errors.js';
import { isMissing, listLocalFiles, pathInside, writeWhole } from './local-files.js';
import { formatObjectStoreUri, joinLocation, parseObjectStoreUri, type ObjectAddress } from './location.js';
import { forEachLimited, TREE_TRANSFERS } from './parallel.js';
import { explainS3Error, isAbsentObject, isRangeNotSatisfiable, isTransientS3Error } from './s3-errors.js';
import { rideOutTransient } from './s3-patience.js';
import { createS3Client } from './s3-client.js';
import { describeS3Service, type S3Settings } from './s3-settings.js';
import type { ByteRange, Storage, StoredBytes, StoredObject } from './storage.js';
import { MIB } from '../job/units.js';

/** Multipart upload: parts this big, this many in flight (so at most ~32 MiB buffered per file). */
const PART_SIZE = 8 * MIB;
const PARTS_IN_FLIGHT = 4;
/** The most keys one DeleteObjects request takes. */
const DELETE_BATCH = 1000;

/** Storage on S3 or an S3-compatible service; see s3-settings.ts for how it is configured. */
export class S3Storage implements Storage {
  private readonly client: S3Client;
  private readonly service: string;
  private readonly patienceMs: number;

  constructor(settings: S3Settings) {
    this.client = createS3Client(settings);
    this.service = describeS3Service(settings);
    this.patienceMs = settings.patienceMs;
  }

  isLocal(): boolean {
    return false;
  }

  async putFile(localPath: string, uri: string): Promise<void> {
    const target = parseObjectStoreUri(uri);
    await mustExist(localPath);
    await this.run(target, async () => {
      const upload = new Upload({
        client: this.client,
        params: { Bucket: target.bucket, Key: target.key, Body: createReadStream(localPath) },
        partSize: PART_SIZE,
        queueSize: PARTS_IN_FLIGHT,
      });
      await upload.done();
    });
  }

  async getFile(uri: string, localPath: string): Promise<void> {
    const source = parseObjectStoreUri(uri);
    await this.run(source, async () => {
      const body = await this.read(source);
      if (body === null) throw new UserError(`${uri} does not exist`, 'check the s3:// URI');
      await writeWhole(localPath, (temp) => pipeline(body, createWriteStream(temp)));
    });
  }

  async putText(uri: string, text: string): Promise<void> {
    const target = parseObjectStoreUri(uri);
    await this.run(target, () => this.client.send(new PutObjectCommand({ Bucket: target.bucket, Key: target.key, Body: text })));
  }

  async getText(uri: string): Promise<string | null> {
    const source = parseObjectStoreUri(uri);
    return this.run(source, async () => {
      const body = await this.read(source);
      return body === null ? null : (await readAll(body)).toString('utf8');
    });
  }

  async openRead(uri: string, options: { start?: number } = {}): Promise<NodeJS.ReadableStream | null> {
    const source = parseObjectStoreUri(uri);
    return this.run(source, () => this.read(source, options.start ?? 0));
  }

  async readRange(uri: string, range: ByteRange): Promise<StoredBytes | null> {
    const source = parseObjectStoreUri(uri);
    return this.run(source, async () => {
      // The size first, as a file is read: a tail needs it, and a ranged GET of an empty object
      // or past the end is answered differently by different servers (416, or a broken reply).
      // A suffix range (`bytes=-N`) is not read right by every S3-compatible server either.
      const size = await this.size(source);
      if (size === null) return null;
      const start = Math.min(range.start ?? Math.max(0, size - range.length), size);
      const length = Math.min(range.length, size - start);
      if (length <= 0) return { start, bytes: Buffer.alloc(0) };
      try {
        const object = await this.client.send(new GetObjectCommand({ Bucket: source.bucket, Key: source.key, Range: `bytes=${start}-${start + length - 1}` }));
        const bytes = await readAll(object.Body as Readable);
        // A server that ignores Range sends the whole object.
        return { start, bytes: object.ContentRange === undefined ? bytes.subarray(start, start + length) : bytes };
      } catch (error) {
        // Replaced or deleted since its size was read.
        if (isRangeNotSatisfiable(error)) return { start, bytes: Buffer.alloc(0) };
        if (isAbsentObject(error)) return null;
        throw error;
      }
    });
  }

  async exists(uri: string): Promise<boolean> {
    const target = parseObjectStoreUri(uri);
    return this.run(target, async () => (await this.size(target)) !== null);
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const folder = parseObjectStoreUri(prefix);
    const keyPrefix = folder.key === '' ? '' : `${folder.key}/`;
    return this.run(folder, async () => {
      const found: StoredObject[] = [];
      let token: string | undefined;
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: folder.bucket, Prefix: keyPrefix, ContinuationToken: token }));
        for (const object of page.Contents ?? []) {
          // Keys ending in `/` are the empty "folder" markers some consoles create, not files.
          if (object.Key === undefined || object.Key.endsWith('/')) continue;
          found.push({
            uri: formatObjectStoreUri({ bucket: folder.bucket, key: object.Key }),
            relative: object.Key.slice(keyPrefix.length),
            size: object.Size ?? 0,
          });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
      return found;
    });
  }

  async delete(uri: string): Promise<void> {
    const target = parseObjectStoreUri(uri);
    await this.run(target, () => this.client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: target.key })));
  }

  async deletePrefix(prefix: string): Promise<void> {
    const folder = parseObjectStoreUri(prefix);
    const keys = (await this.list(prefix)).map((object) => parseObjectStoreUri(object.uri).key);
    await this.run(folder, async () => {
      for (let first = 0; first < keys.length; first += DELETE_BATCH) {
        const batch = keys.slice(first, first + DELETE_BATCH).map((Key) => ({ Key }));
        const result = await this.client.send(new DeleteObjectsCommand({ Bucket: folder.bucket, Delete: { Objects: batch, Quiet: true } }));
        const failure = result.Errors?.[0];
        if (failure) throw new Error(`S3 could not delete s3://${folder.bucket}/${failure.Key} (${failure.Code}: ${failure.Message})`);
      }
    });
  }

  async putTree(localDir: string, prefix: string): Promise<number> {
    parseObjectStoreUri(prefix);
    const files = await listLocalFiles(localDir);
    await forEachLimited(files, TREE_TRANSFERS, (file) => this.putFile(file.path, joinLocation(prefix, file.relative)));
    return files.length;
  }

  async getTree(prefix: string, localDir: string): Promise<number> {
    const objects = await this.list(prefix);
    await forEachLimited(objects, TREE_TRANSFERS, (object) => this.getFile(object.uri, pathInside(localDir, object.relative, object.uri)));
    return objects.length;
  }

  async check(location: string): Promise<void> {
    const folder = parseObjectStoreUri(location);
    const probe = parseObjectStoreUri(joinLocation(formatObjectStoreUri(folder), `.fanout-probe-${process.pid}-${Date.now()}`));
    // A check answers a person who just configured something: a wrong endpoint is said at once, without waiting out the patience.
    const noPatience = 0;
    await this.run(
      folder,
      async () => {
        await this.client.send(new PutObjectCommand({ Bucket: probe.bucket, Key: probe.key, Body: 'fanout\n' }));
        await this.client.send(new DeleteObjectCommand({ Bucket: probe.bucket, Key: probe.key }));
      },
      noPatience,
    );
  }

  /** The object's size in bytes; null when it does not exist. */
  private async size(target: ObjectAddress): Promise<number | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.key }));
      return head.ContentLength ?? 0;
    } catch (error) {
      if (isAbsentObject(error)) return null;
      throw error;
    }
  }

  /** The object's bytes from `start` on; null when it does not exist. */
  private async read(source: ObjectAddress, start = 0): Promise<Readable | null> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: source.bucket, Key: source.key, ...(start > 0 ? { Range: `bytes=${start}-` } : {}) }));
      return object.Body as Readable;
    } catch (error) {
      if (isRangeNotSatisfiable(error)) return Readable.from([]);
      if (isAbsentObject(error)) return null;
      throw error;
    }
  }

  /**
   * Every S3 call goes through here: it rides out transient errors for up to the patience (so
   * staging an attempt in or out survives a short outage), and its failures read the same
   * whatever the operation. An operation is retried whole, so each must be safe to repeat.
   */
  private async run<T>(target: ObjectAddress, operation: () => Promise<T>, patienceMs = this.patienceMs): Promise<T> {
    const started = Date.now();
    try {
      return await rideOutTransient(operation, isTransientS3Error, patienceMs);
    } catch (error) {
      throw explainS3Error(error, { service: this.service, bucket: target.bucket, retriedForMs: Date.now() - started });
    }
  }
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  return Buffer.concat(chunks);
}

async function mustExist(localPath: string): Promise<void> {
  try {
    await stat(localPath);
  } catch (error) {
    if (isMissing(error)) throw new UserError(`${localPath} does not exist`, 'check the path', { cause: error });
    throw error;
  }
}
