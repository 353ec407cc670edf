/**
 * Where a run's files live when workers share no disk: its workdir (attempt logs, result records,
 * chunk files) and outdir (task outputs), as a local folder or an object-store prefix. Workers
 * stage inputs in before an attempt and outputs and logs out after, through this one contract,
 * so the code paths are the same on a shared filesystem and on S3.
 *
 * Locations are local paths or `s3://bucket/prefix` URIs (see location.ts). A prefix names a
 * folder: everything "under" `s3://b/run/1` is under `run/1/`, never `run/10`.
 */
export interface Storage {
  /**
   * True when `location` is a path on a filesystem this machine mounts (a local or shared
   * folder): processes can work in it and renames in it are atomic. False in an object store,
   * where work happens in a local copy that is uploaded afterwards, so a file appears there only
   * whole, once its writer is done. Code outside src/storage asks this, never the URI's scheme.
   */
  isLocal(location: string): boolean;
  /** Upload a local file, streamed (multipart for large files; never whole in memory). */
  putFile(localPath: string, uri: string): Promise<void>;
  /**
   * Download to a local file, streamed, written to a temp name then renamed (a killed download
   * leaves no file under the final name). A missing object is a UserError.
   */
  getFile(uri: string, localPath: string): Promise<void>;
  putText(uri: string, text: string): Promise<void>;
  /** null when the object does not exist. */
  getText(uri: string): Promise<string | null>;
  /**
   * A readable stream of the object, or null when absent (for `fanout logs`, which may print big
   * logs). `start` is a byte offset; at or past the end the stream is empty.
   */
  openRead(uri: string, options?: { start?: number }): Promise<NodeJS.ReadableStream | null>;
  /**
   * Up to `length` bytes of the object from byte `start`, or its last `length` bytes when `start`
   * is not given, with the offset they start at; null when it does not exist. A start at or past
   * the end reads nothing, from the end. For reading a piece of a big log without fetching it whole.
   */
  readRange(uri: string, range: ByteRange): Promise<StoredBytes | null>;
  exists(uri: string): Promise<boolean>;
  /** Every object under a prefix (recursive), with size; `relative` names use `/`. Empty when there is none. */
  list(prefix: string): Promise<StoredObject[]>;
  /** Delete one object (nothing when it does not exist). */
  delete(uri: string): Promise<void>;
  /** Delete every object under the prefix. */
  deletePrefix(prefix: string): Promise<void>;
  /** Upload every file under a local folder to prefix/<relative path>; returns the count. Bounded parallelism. */
  putTree(localDir: string, prefix: string): Promise<number>;
  /** Download every object under the prefix to localDir/<relative>; returns the count. */
  getTree(prefix: string, localDir: string): Promise<number>;
  /**
   * Check that the location can be used: reachable, credentials accepted, bucket (or folder)
   * there and writable — by writing and deleting a tiny probe object. Throws UserError otherwise.
   */
  check(location: string): Promise<void>;
}

export interface StoredObject {
  /** Its full location (joinLocation(prefix, relative)). */
  uri: string;
  /** Its name under the listed prefix, `/`-separated. */
  relative: string;
  /** Bytes. */
  size: number;
}

export interface ByteRange {
  /** Where to start; undefined: the last `length` bytes. */
  start?: number;
  length: number;
}

export interface StoredBytes {
  /** The offset of the first byte read: the start asked for, or where the tail (or the end) is. */
  start: number;
  bytes: Buffer;
}
