import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { FileStorage } from '../src/storage/file-storage.js';
import { openStorage, storageFor } from '../src/storage/open-storage.js';
import { storageContract } from './storage-contract.js';

const folders: string[] = [];
afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

storageContract('file storage', async () => {
  const base = await mkdtemp(join(tmpdir(), 'fanout-storage-file-'));
  folders.push(base);
  let next = 0;
  return { storage: storageFor(base), newRoot: () => join(base, `t${++next}`), isLocal: true };
});

storageContract('the storage a process hands around, on folders', async () => {
  const base = await mkdtemp(join(tmpdir(), 'fanout-storage-any-'));
  folders.push(base);
  let next = 0;
  return { storage: openStorage(), newRoot: () => join(base, `t${++next}`), isLocal: true };
});

describe('file storage specifics', () => {
  it('is what storageFor gives for a local path', () => {
    expect(storageFor('/some/where')).toBeInstanceOf(FileStorage);
  });

  it('says which folder cannot be written, and why', async () => {
    const base = await mkdtemp(join(tmpdir(), 'fanout-storage-file-'));
    folders.push(base);
    await writeFile(join(base, 'a-file'), 'x');
    const error = await new FileStorage().check(join(base, 'a-file', 'sub')).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).describe()).toBe(`cannot write to ${join(base, 'a-file', 'sub')} (ENOTDIR); check that the folder exists and that you may write there`);
    if (process.getuid?.() !== 0) {
      await chmod(base, 0o500);
      await expect(new FileStorage().check(join(base, 'ro'))).rejects.toThrow(/\(EACCES\)/);
      await chmod(base, 0o700);
    }
  });
});
