import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { UserError } from '../errors.js';

/** The local-disk chores both storages share: walking a folder and writing files whole or not at all. */

export interface LocalFile {
  path: string;
  /** Under the walked folder, `/`-separated (the form object keys use). */
  relative: string;
  size: number;
}

/** Every file under a folder, recursively, following symbolic links to files and folders; [] when it does not exist. */
export async function listLocalFiles(root: string): Promise<LocalFile[]> {
  const found: LocalFile[] = [];
  const walk = async (folder: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(folder);
    } catch (error) {
      if (folder === root && isMissing(error)) return;
      throw error;
    }
    for (const name of names) {
      const path = join(folder, name);
      const info = await stat(path);
      if (info.isDirectory()) await walk(path);
      else if (info.isFile()) found.push({ path, relative: relative(root, path).split(sep).join('/'), size: info.size });
    }
  };
  await walk(root);
  return found.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));
}

/**
 * Write `target` through `write(tempPath)` then rename, so a writer killed half-way leaves no
 * file under the final name (readers take a present file as complete). The temp file sits
 * beside the target, on the same filesystem, so the rename is atomic.
 */
export async function writeWhole(target: string, write: (tempPath: string) => Promise<void>): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const temp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.partial`);
  try {
    await write(temp);
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * `root/<relative>`, refusing names that climb out of `root` (an object key may hold `..`), so a
 * download never writes outside the folder it was asked to fill.
 */
export function pathInside(root: string, relativeName: string, source: string): string {
  const target = resolve(root, ...relativeName.split('/'));
  const base = resolve(root);
  if (target !== base && target.startsWith(base + sep)) return target;
  throw new UserError(`${source} would be written outside ${root} (as "${relativeName}")`, 'rename or remove that object');
}

export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
