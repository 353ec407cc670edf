import { open } from 'node:fs/promises';
import { isObjectStoreUri } from '../storage/location.js';
import { storageFor } from '../storage/open-storage.js';
import { MIB } from '../job/units.js';

/** A piece of a log: the dashboard asks again from `nextOffset` to follow a running attempt. */
export interface LogPiece {
  offset: number;
  nextOffset: number;
  text: string;
  /** False when the log is not there (yet): not started, or in object storage until the attempt ends. */
  found: boolean;
}

/** Without an offset, the page opens a log at its last this-many bytes. */
export const TAIL_BYTES = 64 * 1024;
/** The most one request returns. */
const MAX_PIECE_BYTES = MIB;

/**
 * Read a log file from `offset` (or its tail). `location` always comes from an attempt's folder
 * as the store recorded it, never from the request.
 */
export async function readLogPiece(location: string, offset: number | undefined): Promise<LogPiece> {
  if (isObjectStoreUri(location)) return readObject(location, offset ?? 0);
  let file;
  try {
    file = await open(location, 'r');
  } catch {
    return { offset: offset ?? 0, nextOffset: offset ?? 0, text: '', found: false };
  }
  try {
    const { size } = await file.stat();
    const from = Math.min(offset ?? Math.max(0, size - TAIL_BYTES), size);
    const buffer = Buffer.alloc(Math.min(MAX_PIECE_BYTES, size - from));
    const { bytesRead } = await file.read(buffer, 0, buffer.length, from);
    const whole = wholeCharacters(buffer.subarray(0, bytesRead));
    return { offset: from, nextOffset: from + whole.length, text: whole.toString('utf8'), found: true };
  } finally {
    await file.close();
  }
}

async function readObject(uri: string, offset: number): Promise<LogPiece> {
  const stream = await storageFor(uri).openRead(uri, { start: offset });
  if (stream === null) return { offset, nextOffset: offset, text: '', found: false };
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    length += chunk.length;
    if (length >= MAX_PIECE_BYTES) break;
  }
  const whole = wholeCharacters(Buffer.concat(chunks).subarray(0, MAX_PIECE_BYTES));
  return { offset, nextOffset: offset + whole.length, text: whole.toString('utf8'), found: true };
}

/** Stop before a UTF-8 character cut at the end, so the next piece starts with all of it. */
function wholeCharacters(bytes: Buffer): Buffer {
  let end = bytes.length;
  let back = 0;
  while (end - back - 1 >= 0 && back < 3 && (bytes[end - back - 1]! & 0xc0) === 0x80) back++;
  const lead = bytes[end - back - 1];
  if (lead !== undefined && lead >= 0xc0) {
    const needed = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    if (back + 1 < needed) end = end - back - 1;
  }
  return bytes.subarray(0, end);
}
