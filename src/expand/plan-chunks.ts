import { createReadStream } from 'node:fs';
import { RecordScanner, type RecordFormat } from './split-records.js';

/** Exactly one of the two, as in the job file. */
export type ChunkRule = { count: number } | { sizeBytes: number };

export interface ChunkOptions {
  /** Read-buffer size; tests shrink it so records straddle buffer boundaries. */
  highWaterMark?: number;
}

/** Big reads keep the per-buffer cost small; the scan holds only one buffer at a time. */
const READ_BUFFER_BYTES = 1 << 20;

/** Bytes `[start, end)` of the source file. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Reads `file` once and returns the byte ranges of its chunks, each a run of whole records. Bytes
 * before the first record (blank lines) belong to no chunk.
 */
export async function planChunks(file: string, format: RecordFormat, rule: ChunkRule, fileSize: number, options: ChunkOptions = {}): Promise<ByteRange[]> {
  const starts: number[] = [];
  const cutter = 'count' in rule ? cutByCount(rule.count, fileSize) : cutBySize(rule.sizeBytes);
  const keep = (start: number | null): void => {
    if (start !== null) starts.push(start);
  };
  const scanner = new RecordScanner(format, (offset) => keep(cutter.recordStart(offset)));
  const stream = createReadStream(file, { highWaterMark: options.highWaterMark ?? READ_BUFFER_BYTES });
  for await (const buffer of stream) scanner.push(buffer as Buffer);
  const end = scanner.end();
  keep(cutter.end(end));
  return starts.map((start, i) => ({ start, end: starts[i + 1] ?? end }));
}

/** Decides where chunks start from the record starts, in order. */
interface Cutter {
  /** A record starts at `offset`; returns where a new chunk starts, once that is known. */
  recordStart(offset: number): number | null;
  /** The file ends at `offset`; returns where a last chunk starts, if one does. */
  end(offset: number): number | null;
}

/**
 * At most `count` chunks of about `fileSize / count` bytes: a chunk starts at the first record start
 * at or past each multiple of that target, so one huge record may swallow several targets.
 */
function cutByCount(count: number, fileSize: number): Cutter {
  /** Index of the next target: byte `fileSize * k / count`. */
  let k = 0;
  return {
    recordStart(offset) {
      if (k >= count || offset * count < fileSize * k) return null;
      k = Math.floor((offset * count) / fileSize) + 1;
      return offset;
    },
    end: () => null,
  };
}

/**
 * A chunk grows while it stays within `sizeBytes`; a record that would overflow it starts the next
 * chunk, alone if it is bigger than `sizeBytes`. A record's end is only known when the next record
 * starts, so each decision comes one record late.
 */
function cutBySize(sizeBytes: number): Cutter {
  let chunkStart: number | undefined;
  /** The record whose end is not known yet. */
  let open: number | undefined;
  const recordEnds = (end: number): number | null => {
    const start = open;
    open = end;
    if (start === undefined) return null;
    const startsChunk = chunkStart === undefined || (start > chunkStart && end - chunkStart > sizeBytes);
    if (!startsChunk) return null;
    chunkStart = start;
    return start;
  };
  return { recordStart: recordEnds, end: recordEnds };
}
