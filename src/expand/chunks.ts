import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, parse } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { JobFileError } from '../errors.js';
import type { TaskSeed, TaskSource } from '../job/job-spec.js';
import type { ExpandContext } from './expand-context.js';
import { planChunks, type ByteRange, type ChunkOptions, type ChunkRule } from './plan-chunks.js';
import { RecordFormatError, type RecordFormat } from './split-records.js';

export type ChunksSource = Omit<Extract<TaskSource, { kind: 'chunks' }>, 'kind'>;

const EXTENSIONS: Record<RecordFormat, string> = { fasta: '.fa', fastq: '.fq', lines: '.txt' };

/** Written last into a chunk folder: it lists the chunks in order, and its presence means complete. */
const MARKER = 'chunks.json';

/**
 * `chunks: {file, format, count | sizeBytes}`: one task per chunk of whole records. Chunks live in
 * a folder named by the source file's identity and the split settings, so a later run on the same
 * file reuses them and the tasks' inputs (and so their cache keys) stay the same.
 */
export async function expandChunks(source: ChunksSource, ctx: ExpandContext, options: ChunkOptions = {}): Promise<TaskSeed[]> {
  const before = await statSource(source.file, ctx);
  const dir = join(ctx.chunkDir, chunkKey(source, before));
  const names = (await readMarker(dir)) ?? (await split(source, before, dir, ctx, options));
  return names.map((fileName, index) => {
    const chunk = join(dir, fileName);
    return { index, name: parse(fileName).name, vars: { chunk }, inputs: [chunk] };
  });
}

async function statSource(file: string, ctx: ExpandContext): Promise<Stats> {
  const where = ctx.locate('tasks.chunks.file');
  let stats: Stats;
  try {
    stats = await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new JobFileError(where, `the file ${file} does not exist`, 'check the path', {
      cause: error,
    });
  }
  if (!stats.isFile()) {
    throw new JobFileError(where, `${file} is not a file`, 'name the file to split');
  }
  return stats;
}

/** Changes whenever the file or the way it is split changes. */
function chunkKey(source: ChunksSource, stats: Stats): string {
  const identity = [source.file, stats.size, stats.mtimeMs, source.format, source.count ?? null, source.sizeBytes ?? null];
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16);
}

/** The chunk names of a complete chunk folder, or null when there is none. */
async function readMarker(dir: string): Promise<string[] | null> {
  let text: string;
  try {
    text = await readFile(join(dir, MARKER), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const { chunks } = JSON.parse(text) as { chunks: string[] };
  return chunks;
}

/**
 * Splits into a private temporary folder beside `dir` and renames it into place only when complete,
 * so an interrupted split never shows up as `dir` and is never reused.
 */
async function split(source: ChunksSource, before: Stats, dir: string, ctx: ExpandContext, options: ChunkOptions): Promise<string[]> {
  await mkdir(ctx.chunkDir, { recursive: true });
  const temp = await mkdtemp(`${dir}.partial-`);
  try {
    const ranges = await planRanges(source, before.size, ctx, options);
    const ext = EXTENSIONS[source.format];
    const chunks = ranges.map((range, i) => ({
      ...range,
      name: `chunk-${String(i).padStart(5, '0')}${ext}`,
    }));
    for (const { start, end, name } of chunks) {
      // flush: the data must be on disk before the rename below can publish it.
      await pipeline(createReadStream(source.file, { start, end: end - 1 }), createWriteStream(join(temp, name), { flush: true }));
    }
    const names = chunks.map(({ name }) => name);
    await checkUnchanged(source.file, before, ctx);
    const marker = JSON.stringify({ source: source.file, chunks: names });
    await writeFile(join(temp, MARKER), marker, { flush: true });
    return await moveIntoPlace(temp, dir, names);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

async function planRanges(source: ChunksSource, fileSize: number, ctx: ExpandContext, options: ChunkOptions): Promise<ByteRange[]> {
  try {
    return await planChunks(source.file, source.format, chunkRule(source), fileSize, options);
  } catch (error) {
    if (!(error instanceof RecordFormatError)) throw error;
    const where = error.line === undefined ? source.file : `${source.file}:${error.line}`;
    const { kind, fix } = FORMAT_HELP[source.format];
    throw new JobFileError(ctx.locate('tasks.chunks.file'), `${where}: the ${kind} ${error.message}`, fix, { cause: error });
  }
}

const FORMAT_HELP: Record<RecordFormat, { kind: string; fix: string }> = {
  fasta: { kind: 'FASTA file', fix: 'check the file: each record starts with a ">" line' },
  fastq: {
    kind: 'FASTQ file',
    fix: 'check the file: each record is 4 lines, an "@" header, the sequence, "+", the qualities',
  },
  lines: { kind: 'file', fix: 'check the path' },
};

function chunkRule(source: ChunksSource): ChunkRule {
  if (source.count !== undefined) return { count: source.count };
  if (source.sizeBytes !== undefined) return { sizeBytes: source.sizeBytes };
  throw new Error('a chunks source needs count or sizeBytes'); // the job compiler guarantees one
}

/** Chunks cut from a file that was changing would match neither its old nor its new cache key. */
async function checkUnchanged(file: string, before: Stats, ctx: ExpandContext): Promise<void> {
  const after = await stat(file);
  if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
    throw new JobFileError(ctx.locate('tasks.chunks.file'), `the file ${file} changed while it was being split`, 'run again once nothing is writing to it');
  }
}

/** Publishes `temp` as `dir`, unless another run published a complete `dir` first. */
async function moveIntoPlace(temp: string, dir: string, names: string[]): Promise<string[]> {
  try {
    await rename(temp, dir);
    return names;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
  }
  const published = await readMarker(dir);
  if (published !== null) return published;
  // A folder without a marker was not made by a complete split; replace it.
  await rm(dir, { recursive: true, force: true });
  await rename(temp, dir);
  return names;
}
