import { existsSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve, sep } from 'node:path';
import type { TemplateValue } from '../job/template.js';
import type { BindMount } from './container-engines.js';

/**
 * What a task's container sees of the host: the same paths as outside, so one command template
 * works with and without a container. Mounted without asking: the attempt's folder, its output
 * staging folder, where it runs, the job file's folder, and every variable naming an existing
 * absolute path (a file's folder, so an index beside it — .bai, .fai — comes along; a link's
 * target too). Then the job's own `mounts:`.
 */

/** The image's own system folders: a variable naming a file in one of them (e.g. /usr/bin/python) must not hide the image's. */
const IMAGE_OWNED = ['/bin', '/sbin', '/usr', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/proc', '/sys', '/dev', '/boot', '/run'];

function imageOwned(path: string): boolean {
  return path === '/' || IMAGE_OWNED.some((root) => path === root || path.startsWith(`${root}/`));
}

export interface MountProblem {
  problem: string;
  fix: string;
}

/** A `mounts:` entry as written: PATH, SRC:DEST or SRC:DEST:ro|rw; a relative source is under `baseDir`. */
export function parseMount(entry: string, baseDir: string): BindMount | MountProblem {
  const parts = entry.split(':');
  if (parts.length > 3 || parts.some((part) => part === '')) {
    return { problem: `"${entry}" is not a mount`, fix: 'write PATH, SRC:DEST or SRC:DEST:ro (paths holding ":" cannot be mounted)' };
  }
  const [source, target, mode] = parts as [string, string | undefined, string | undefined];
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') return { problem: `"${mode}" in "${entry}" is not a mount mode`, fix: 'write ro or rw' };
  if (target !== undefined && !isAbsolute(target))
    return { problem: `the destination "${target}" in "${entry}" is not absolute`, fix: 'write it as an absolute path inside the container' };
  const absolute = resolve(baseDir, source);
  return { source: absolute, target: target ?? absolute, readOnly: mode === 'ro' };
}

/** Folders a variable's value brings along: none unless it is an absolute path that exists here. */
function valueFolders(value: string): string[] {
  if (!isAbsolute(value) || value.includes('\n') || !existsSync(value)) return [];
  const folders: string[] = [];
  for (const path of new Set([value, safeRealpath(value)])) {
    const folder = isFolder(path) ? path : dirname(path);
    if (!imageOwned(folder)) folders.push(folder);
  }
  return folders;
}

function safeRealpath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The mounts of one attempt. `places` are folders it owns (mounted even before they exist: the
 * runner creates them before the container starts); `values` are its template values.
 */
export function attemptMounts(places: readonly string[], values: Readonly<Record<string, TemplateValue>>, extra: readonly BindMount[]): BindMount[] {
  const folders = new Set(places.filter((place) => isAbsolute(place) && !imageOwned(place)));
  for (const value of Object.values(values)) {
    if (typeof value === 'string') for (const folder of valueFolders(value)) folders.add(folder);
  }
  // A folder inside another mounted one comes with it; mounting it again only costs.
  const sorted = [...folders].map((folder) => folder.replace(/\/+$/, '') || '/').sort();
  const kept: string[] = [];
  for (const folder of sorted) if (!kept.some((outer) => folder === outer || folder.startsWith(outer + sep))) kept.push(folder);
  return [...kept.map((folder) => ({ source: folder, target: folder, readOnly: false })), ...extra];
}
