import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { joinLocation } from '../src/storage/location.js';
import type { Storage } from '../src/storage/storage.js';

/**
 * The behaviour every Storage must have, run against each implementation (a local folder, S3)
 * so code written against the contract works the same on a shared disk and an object store.
 * `newRoot` gives each test a fresh, empty location of its own; `isLocal` is what the storage
 * must say about those locations (true for folders).
 */
export function storageContract(title: string, setup: () => Promise<{ storage: Storage; newRoot: () => string; isLocal: boolean }>): void {
  describe(title, () => {
    let storage: Storage;
    let newRoot: () => string;
    let isLocal: boolean;
    let local: string;

    beforeAll(async () => {
      ({ storage, newRoot, isLocal } = await setup());
      local = await mkdtemp(join(tmpdir(), 'fanout-storage-local-'));
    });
    afterAll(async () => {
      await rm(local, { recursive: true, force: true });
    });

    async function localFile(name: string, content: string | Buffer): Promise<string> {
      const path = join(local, name);
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, content);
      return path;
    }

    async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(Buffer.from(chunk));
      return Buffer.concat(chunks).toString('utf8');
    }

    it('keeps text, replaces it on a second put, and says null for what is not there', async () => {
      const root = newRoot();
      const uri = joinLocation(root, 'results', '1.json');
      expect(await storage.getText(uri)).toBeNull();
      expect(await storage.exists(uri)).toBe(false);
      await storage.putText(uri, '{"reason":"ok"}');
      expect(await storage.getText(uri)).toBe('{"reason":"ok"}');
      await storage.putText(uri, 'ünïcode ✓\n');
      expect(await storage.getText(uri)).toBe('ünïcode ✓\n');
      expect(await storage.exists(uri)).toBe(true);
      expect(await storage.exists(joinLocation(root, 'results'))).toBe(false);
    });

    it('uploads and downloads files, creating the local folders and leaving no temp files', async () => {
      const root = newRoot();
      const content = randomBytes(100_000);
      const source = await localFile('up/data.bin', content);
      const uri = joinLocation(root, 'in', 'data.bin');
      await storage.putFile(source, uri);
      const target = join(local, 'down', 'deep', 'data.bin');
      await storage.getFile(uri, target);
      expect(sha256(await readFile(target))).toBe(sha256(content));
      expect(await readdir(join(local, 'down', 'deep'))).toEqual(['data.bin']);
      expect((await storage.list(root)).map((object) => object.size)).toEqual([100_000]);
    });

    it('moves an empty file', async () => {
      const root = newRoot();
      const uri = joinLocation(root, 'empty.txt');
      await storage.putFile(await localFile('empty.txt', ''), uri);
      expect(await storage.getText(uri)).toBe('');
      const target = join(local, 'empty-down.txt');
      await storage.getFile(uri, target);
      expect(await readFile(target, 'utf8')).toBe('');
    });

    it('refuses a missing source with a UserError on either side', async () => {
      const root = newRoot();
      await expect(storage.getFile(joinLocation(root, 'absent.txt'), join(local, 'never.txt'))).rejects.toThrow(UserError);
      await expect(readdir(local)).resolves.not.toContain('never.txt');
      await expect(storage.putFile(join(local, 'absent.txt'), joinLocation(root, 'x'))).rejects.toThrow(UserError);
    });

    it('opens an object for reading, from a byte offset on', async () => {
      const root = newRoot();
      const uri = joinLocation(root, 'logs', 'stdout');
      await storage.putText(uri, 'line one\nline two\n');
      expect(await readAll((await storage.openRead(uri))!)).toBe('line one\nline two\n');
      expect(await readAll((await storage.openRead(uri, { start: 9 }))!)).toBe('line two\n');
      expect(await readAll((await storage.openRead(uri, { start: 18 }))!)).toBe('');
      expect(await readAll((await storage.openRead(uri, { start: 500 }))!)).toBe('');
      expect(await storage.openRead(joinLocation(root, 'logs', 'stderr'))).toBeNull();
    });

    it('reads a range of bytes from an offset, or the last bytes, and says where it starts', async () => {
      const root = newRoot();
      const uri = joinLocation(root, 'logs', 'stdout');
      await storage.putText(uri, '0123456789');
      expect(await storage.readRange(uri, { start: 2, length: 3 })).toEqual({ start: 2, bytes: Buffer.from('234') });
      expect(await storage.readRange(uri, { start: 8, length: 100 })).toEqual({ start: 8, bytes: Buffer.from('89') });
      expect(await storage.readRange(uri, { length: 4 })).toEqual({ start: 6, bytes: Buffer.from('6789') });
      expect(await storage.readRange(uri, { length: 100 })).toEqual({ start: 0, bytes: Buffer.from('0123456789') });
      expect(await storage.readRange(uri, { start: 10, length: 5 })).toEqual({ start: 10, bytes: Buffer.alloc(0) });
      expect(await storage.readRange(uri, { start: 500, length: 5 })).toEqual({ start: 10, bytes: Buffer.alloc(0) });
      expect(await storage.readRange(uri, { start: 3, length: 0 })).toEqual({ start: 3, bytes: Buffer.alloc(0) });
      expect(await storage.readRange(joinLocation(root, 'logs', 'stderr'), { length: 5 })).toBeNull();
      expect(await storage.readRange(joinLocation(root, 'logs', 'stderr'), { start: 2, length: 5 })).toBeNull();
    });

    it('reads the last bytes of an empty object as nothing, from its start', async () => {
      const root = newRoot();
      const uri = joinLocation(root, 'empty.log');
      await storage.putText(uri, '');
      expect(await storage.readRange(uri, { length: 64 })).toEqual({ start: 0, bytes: Buffer.alloc(0) });
      expect(await storage.readRange(uri, { start: 0, length: 64 })).toEqual({ start: 0, bytes: Buffer.alloc(0) });
    });

    it('says whether its locations are folders this machine can work in', () => {
      expect(storage.isLocal(newRoot())).toBe(isLocal);
    });

    it('lists everything under a prefix as a folder, recursively, with sizes', async () => {
      const root = newRoot();
      await storage.putText(joinLocation(root, 'run', '1', 'a.txt'), 'a');
      await storage.putText(joinLocation(root, 'run', '1', 'sub', 'deeper', 'b.txt'), 'bb');
      await storage.putText(joinLocation(root, 'run', '10', 'not-mine.txt'), 'ccc');
      const listed = await storage.list(joinLocation(root, 'run', '1'));
      expect(listed.map(({ relative, size }) => ({ relative, size })).sort(byRelative)).toEqual([
        { relative: 'a.txt', size: 1 },
        { relative: 'sub/deeper/b.txt', size: 2 },
      ]);
      for (const object of listed) expect(object.uri).toBe(joinLocation(root, 'run', '1', object.relative));
      expect(await storage.list(joinLocation(root, 'nothing-here'))).toEqual([]);
    });

    it('deletes everything under a prefix and nothing beside it', async () => {
      const root = newRoot();
      await storage.putText(joinLocation(root, 'run', '1', 'a.txt'), 'a');
      await storage.putText(joinLocation(root, 'run', '1', 'sub', 'b.txt'), 'b');
      await storage.putText(joinLocation(root, 'run', '10', 'keep.txt'), 'keep');
      await storage.deletePrefix(joinLocation(root, 'run', '1'));
      expect(await storage.list(joinLocation(root, 'run', '1'))).toEqual([]);
      expect(await storage.getText(joinLocation(root, 'run', '10', 'keep.txt'))).toBe('keep');
      await storage.deletePrefix(joinLocation(root, 'run', '1'));
    });

    it('deletes one object, and nothing that merely starts with its name', async () => {
      const root = newRoot();
      await storage.putText(joinLocation(root, 'task', '.marker'), 'm');
      await storage.putText(joinLocation(root, 'task', '.marker-not'), 'keep');
      await storage.delete(joinLocation(root, 'task', '.marker'));
      expect(await storage.exists(joinLocation(root, 'task', '.marker'))).toBe(false);
      expect(await storage.getText(joinLocation(root, 'task', '.marker-not'))).toBe('keep');
      await storage.delete(joinLocation(root, 'task', '.marker'));
    });

    it('uploads and downloads whole trees', async () => {
      const root = newRoot();
      const tree = join(local, 'tree-up');
      const names = ['top.txt', 'empty.txt', 'a/one.txt', 'a/b/c/two.bin', 'with space/ünï+cödé (1).txt', ...Array.from({ length: 20 }, (_, i) => `many/${i}.txt`)];
      for (const name of names) await localFile(join('tree-up', name), name === 'empty.txt' ? '' : `content of ${name}`);
      expect(await storage.putTree(tree, joinLocation(root, 'out'))).toBe(names.length);
      expect((await storage.list(joinLocation(root, 'out'))).map((object) => object.relative).sort()).toEqual([...names].sort());

      const down = join(local, 'tree-down');
      expect(await storage.getTree(joinLocation(root, 'out'), down)).toBe(names.length);
      for (const name of names) {
        expect(await readFile(join(down, name), 'utf8')).toBe(name === 'empty.txt' ? '' : `content of ${name}`);
      }
      expect(await storage.putTree(join(local, 'no-such-tree'), joinLocation(root, 'none'))).toBe(0);
      expect(await storage.getTree(joinLocation(root, 'none'), join(local, 'none-down'))).toBe(0);
    });

    it('checks that a location can be written, leaving nothing behind', async () => {
      const root = newRoot();
      await storage.check(root);
      expect(await storage.list(root)).toEqual([]);
    });
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function byRelative(a: { relative: string }, b: { relative: string }): number {
  return a.relative.localeCompare(b.relative);
}
