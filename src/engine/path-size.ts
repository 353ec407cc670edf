import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The bytes of a file, or of every file under a folder; null when there is nothing readable
 * there. Links to files count as their targets; links to folders are not followed, so a link
 * loop cannot make the walk endless.
 */
export function pathSize(path: string): number | null {
  try {
    const stats = statSync(path);
    return stats.isDirectory() ? folderSize(path) : stats.size;
  } catch {
    return null;
  }
}

function folderSize(folder: string): number {
  let total = 0;
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const full = join(folder, entry.name);
    if (entry.isDirectory()) total += folderSize(full);
    else if (entry.isFile()) total += statSync(full).size;
    else if (entry.isSymbolicLink()) {
      const target = statSync(full, { throwIfNoEntry: false });
      if (target?.isFile()) total += target.size;
    }
  }
  return total;
}
