import { copyFile, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import { isMissing, listLocalFiles, pathInside, writeWhole } from './local-files.js';
import { joinLocation } from './location.js';
import { forEachLimited, TREE_TRANSFERS } from './parallel.js';
import type { ByteRange, Storage, StoredBytes, StoredObject } from './storage.js';

/**
 * Storage on a local or shared filesystem: locations are paths and objects are files. Every
 * write goes through a temp name and a rename, as object stores make an object appear whole.
 */
export class FileStorage implements Storage {
  isLocal(): boolean {
    return true;
  }

  async putFile(localPath: string, uri: string): Promise<void> {
    await copyWhole(localPath, uri);
  }

  async getFile(uri: string, localPath: string): Promise<void> {
    await copyWhole(uri, localPath);
  }

  async putText(uri: string, text: string): Promise<void> {
    await writeWhole(uri, (temp) => writeFile(temp, text));
  }

  async getText(uri: string): Promise<string | null> {
    try {
      return await readFile(uri, 'utf8');
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  async openRead(uri: string, options: { start?: number } = {}): Promise<NodeJS.ReadableStream | null> {
    try {
      // Opened here, not lazily by the stream, so an absent file is a null rather than a stream error.
      const handle = await open(uri, 'r');
      const start = options.start ?? 0;
      if (start >= (await handle.stat()).size) {
        await handle.close();
        return Readable.from([]);
      }
      return handle.createReadStream({ start });
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  async readRange(uri: string, range: ByteRange): Promise<StoredBytes | null> {
    let handle;
    try {
      handle = await open(uri, 'r');
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    try {
      const { size } = await handle.stat();
      const start = Math.min(range.start ?? Math.max(0, size - range.length), size);
      const buffer = Buffer.alloc(Math.max(0, Math.min(range.length, size - start)));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
      return { start, bytes: buffer.subarray(0, bytesRead) };
    } finally {
      await handle.close();
    }
  }

  async exists(uri: string): Promise<boolean> {
    try {
      return (await stat(uri)).isFile();
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    return (await listLocalFiles(prefix)).map((file) => ({ uri: file.path, relative: file.relative, size: file.size }));
  }

  async delete(uri: string): Promise<void> {
    await rm(uri, { force: true });
  }

  async deletePrefix(prefix: string): Promise<void> {
    await rm(prefix, { recursive: true, force: true });
  }

  async putTree(localDir: string, prefix: string): Promise<number> {
    const files = await listLocalFiles(localDir);
    await forEachLimited(files, TREE_TRANSFERS, (file) => copyWhole(file.path, joinLocation(prefix, file.relative)));
    return files.length;
  }

  async getTree(prefix: string, localDir: string): Promise<number> {
    const files = await listLocalFiles(prefix);
    await forEachLimited(files, TREE_TRANSFERS, (file) => copyWhole(file.path, pathInside(localDir, file.relative, file.path)));
    return files.length;
  }

  async check(location: string): Promise<void> {
    const probe = joinLocation(location, `.fanout-probe-${process.pid}-${Date.now()}`);
    try {
      await mkdir(location, { recursive: true });
      await writeFile(probe, 'fanout\n');
      await rm(probe);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new UserError(`cannot write to ${location} (${code})`, 'check that the folder exists and that you may write there', { cause: error });
    }
  }
}

async function copyWhole(from: string, to: string): Promise<void> {
  try {
    await writeWhole(to, (temp) => copyFile(from, temp));
  } catch (error) {
    if (
      isMissing(error) &&
      !(await stat(from).then(
        () => true,
        () => false,
      ))
    ) {
      throw new UserError(`${from} does not exist`, 'check the path', { cause: error });
    }
    throw error;
  }
}
