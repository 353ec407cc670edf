import type { TaskSeed, TaskSource } from '../job/job-spec.js';
import { expandChunks } from './chunks.js';
import { expandEach } from './each.js';
import type { ExpandContext } from './expand-context.js';
import { expandFiles } from './files.js';
import { expandFolders } from './folders.js';
import { expandMatrix } from './matrix.js';
import { expandTable } from './table.js';

/** Turns a job's task source into its tasks, in order; throws JobFileError on bad input. */
export async function expandTasks(source: TaskSource, ctx: ExpandContext): Promise<TaskSeed[]> {
  switch (source.kind) {
    case 'each':
      return expandEach(source.items, ctx);
    case 'matrix':
      return expandMatrix(source.axes, ctx);
    case 'files':
      return expandFiles(source.glob, source.cwd, ctx);
    case 'folders':
      return expandFolders(source.parent, ctx);
    case 'table':
      return expandTable(source.file, ctx);
    case 'chunks':
      return expandChunks(source, ctx);
  }
}
