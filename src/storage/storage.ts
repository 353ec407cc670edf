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
