import { RETURN_FILE } from '../api/map-protocol.js';
import { MIB } from '../job/units.js';
import { parseResultRecord, RESULT_FILE, STDERR_FILE, STDOUT_FILE, type ResultRecord } from '../runner/result-record.js';
import { joinLocation } from './location.js';
import type { Storage } from './storage.js';

/**
 * The one reader of what an attempt leaves behind (its logs and result record, in its folder)
 * and of what a task returns (in its outputs), wherever the run keeps them: a folder or object
 * storage. The CLI (`fanout logs`), the TypeScript API (`run.gather()`) and the dashboard all
 * read through it, so they see the same files the same way.
 *
 * Folders passed in always come from the store (an attempt's recorded folder, a task's outputs),
 * never from a request, so a caller cannot be made to read anything else.
 */

export type LogStream = 'stdout' | 'stderr';

const LOG_FILES: Readonly<Record<LogStream, string>> = { stdout: STDOUT_FILE, stderr: STDERR_FILE };

/** A piece of a log: the dashboard asks again from `nextOffset` to follow a running attempt. */
export interface LogPiece {
  offset: number;
  nextOffset: number;
  text: string;
  /** False when the log is not there (yet): not started, or in object storage until the attempt ends. */
  found: boolean;
}

/** Without an offset, a log piece is its last this-many bytes (at most). */
export const TAIL_BYTES = 64 * 1024;
/** The most one piece holds. */
const MAX_PIECE_BYTES = MIB;

export class AttemptFiles {
  constructor(private readonly storage: Storage) {}

  /** Where an attempt's log is. */
  logLocation(attemptDir: string, stream: LogStream): string {
    return joinLocation(attemptDir, LOG_FILES[stream]);
  }

  /**
   * True when an attempt's logs and result record appear only once it has ended: a worker runs
   * it in a local copy of its folder and uploads them after. Until then a running attempt has none.
   */
  arriveWhenEnded(attemptDir: string): boolean {
    return !this.storage.isLocal(attemptDir);
  }

  /** A log, streamed whole (it may be big); null when it is not there. */
  openLog(attemptDir: string, stream: LogStream): Promise<NodeJS.ReadableStream | null> {
    return this.storage.openRead(this.logLocation(attemptDir, stream));
  }

  /**
   * A piece of a log from `offset`, or without one its tail (the last TAIL_BYTES), of at most
   * `maxBytes` (MAX_PIECE_BYTES at most). A piece never ends inside a UTF-8 character: the
   * next, from `nextOffset`, starts with all of it. An offset past the end reads from the end.
   */
  async readLogPiece(attemptDir: string, stream: LogStream, options: { offset?: number; maxBytes?: number } = {}): Promise<LogPiece> {
    const maxBytes = Math.min(options.maxBytes ?? MAX_PIECE_BYTES, MAX_PIECE_BYTES);
    const { offset } = options;
    const range = offset === undefined ? { length: Math.min(TAIL_BYTES, maxBytes) } : { start: offset, length: maxBytes };
    const read = await this.storage.readRange(this.logLocation(attemptDir, stream), range);
    if (read === null) return { offset: offset ?? 0, nextOffset: offset ?? 0, text: '', found: false };
    const whole = wholeCharacters(read.bytes);
    return { offset: read.start, nextOffset: read.start + whole.length, text: whole.toString('utf8'), found: true };
  }

  /** A log whole, as text, for logs known to be small (a function map's stderr); null when it is not there. */
  readLogText(attemptDir: string, stream: LogStream): Promise<string | null> {
    return this.storage.getText(this.logLocation(attemptDir, stream));
  }

  /** The attempt's result record; null while it has none (or what is there is not one). */
  async readResultRecord(attemptDir: string): Promise<ResultRecord | null> {
    const text = await this.storage.getText(joinLocation(attemptDir, RESULT_FILE));
    return text === null ? null : parseResultRecord(text);
  }

  /**
   * What a function map's task returned, from its committed outputs; undefined when it left no
   * return value (its function returned undefined).
   */
  async readReturnValue(outputs: string): Promise<unknown> {
    const text = await this.storage.getText(joinLocation(outputs, RETURN_FILE));
    return text === null ? undefined : (JSON.parse(text) as unknown);
  }
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
