import type { S3Settings } from './s3-settings.js';
import type { ByteRange, Storage, StoredBytes, StoredObject } from './storage.js';

/**
 * S3 storage that loads the AWS SDK on first use. Loading it costs about 0.2 s of CPU per
 * process, which every worker and every CLI command would otherwise pay even when its run keeps
 * everything on a filesystem.
 */
export class LazyS3Storage implements Storage {
  private loaded: Promise<Storage> | undefined;

  constructor(private readonly settings: S3Settings) {}

  private storage(): Promise<Storage> {
    this.loaded ??= import('./s3-storage.js').then(({ S3Storage }) => new S3Storage(this.settings));
    return this.loaded;
  }

  isLocal(): boolean {
    return false;
  }
  async putFile(localPath: string, uri: string): Promise<void> {
    return (await this.storage()).putFile(localPath, uri);
  }
  async getFile(uri: string, localPath: string): Promise<void> {
    return (await this.storage()).getFile(uri, localPath);
  }
  async putText(uri: string, text: string): Promise<void> {
    return (await this.storage()).putText(uri, text);
  }
  async getText(uri: string): Promise<string | null> {
    return (await this.storage()).getText(uri);
  }
  async openRead(uri: string, options?: { start?: number }): Promise<NodeJS.ReadableStream | null> {
    return (await this.storage()).openRead(uri, options);
  }
  async readRange(uri: string, range: ByteRange): Promise<StoredBytes | null> {
    return (await this.storage()).readRange(uri, range);
  }
  async exists(uri: string): Promise<boolean> {
    return (await this.storage()).exists(uri);
  }
  async list(prefix: string): Promise<StoredObject[]> {
    return (await this.storage()).list(prefix);
  }
  async delete(uri: string): Promise<void> {
    return (await this.storage()).delete(uri);
  }
  async deletePrefix(prefix: string): Promise<void> {
    return (await this.storage()).deletePrefix(prefix);
  }
  async putTree(localDir: string, prefix: string): Promise<number> {
    return (await this.storage()).putTree(localDir, prefix);
  }
  async getTree(prefix: string, localDir: string): Promise<number> {
    return (await this.storage()).getTree(prefix, localDir);
  }
  async check(location: string): Promise<void> {
    return (await this.storage()).check(location);
  }
}
