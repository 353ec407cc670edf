/**
 * Finds where records start in a FASTA, FASTQ or line-per-record file fed to it buffer by buffer.
 * It keeps no file content, only a few numbers per line, so memory stays flat whatever the size of
 * the file or of its lines (an unwrapped chromosome is one 250 MB line).
 */

export type RecordFormat = 'fasta' | 'fastq' | 'lines';

/** A file that does not hold records of its format, at a 1-based line unless no one line is at fault. */
export class RecordFormatError extends Error {
  override name = 'RecordFormatError';
  constructor(
    problem: string,
    readonly line?: number,
  ) {
    super(problem);
  }
}

/** What a format needs to know about one line, reported once the line has ended. */
interface LineInfo {
  /** Byte offset of the line's first byte in the file. */
  start: number;
  /** 1-based line number. */
  number: number;
  /** The line's first byte (the newline itself for an empty line). */
  first: number;
  /** Only spaces, tabs and CR. */
  blank: boolean;
}

/** Decides, line by line, where records start; throws RecordFormatError on malformed input. */
interface FormatReader {
  line(info: LineInfo): void;
  end(): void;
}

const NEWLINE = 0x0a;
const GREATER_THAN = 0x3e;
const AT_SIGN = 0x40;
const PLUS = 0x2b;

export class RecordScanner {
  private readonly reader: FormatReader;
  private offset = 0;
  private lineCount = 0;
  /** The line being read, or null between lines. */
  private current: { start: number; first: number; blank: boolean } | null = null;

  constructor(format: RecordFormat, onRecordStart: (offset: number) => void) {
    this.reader = READERS[format](onRecordStart);
  }

  push(buffer: Buffer): void {
    let pos = 0;
    while (pos < buffer.length) {
      this.current ??= { start: this.offset + pos, first: buffer[pos] ?? NEWLINE, blank: true };
      const newline = buffer.indexOf(NEWLINE, pos);
      const end = newline === -1 ? buffer.length : newline;
      // Checking stops at the first visible byte, so long sequence lines cost nothing here.
      if (this.current.blank) this.current.blank = isBlank(buffer, pos, end);
      if (newline === -1) break;
      this.endLine();
      pos = newline + 1;
    }
    this.offset += buffer.length;
  }

  /** Finishes the scan; returns the number of bytes seen. */
  end(): number {
    if (this.current !== null) this.endLine();
    this.reader.end();
    return this.offset;
  }

  private endLine(): void {
    const line = this.current;
    if (line === null) return;
    this.lineCount += 1;
    this.reader.line({ ...line, number: this.lineCount });
    this.current = null;
  }
}

function isBlank(buffer: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i += 1) {
    const byte = buffer[i];
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) return false;
  }
  return true;
}

const READERS: Record<RecordFormat, (onRecordStart: (offset: number) => void) => FormatReader> = {
  /** One record per line, blank lines included: they are data to the task. */
  lines(onRecordStart) {
    let any = false;
    return {
      line({ start }) {
        any = true;
        onRecordStart(start);
      },
      end() {
        if (!any) throw new RecordFormatError('is empty');
      },
    };
  },

  /** A `>` header line and the lines up to the next one. Only blank lines may precede the first. */
  fasta(onRecordStart) {
    let any = false;
    return {
      line({ start, number, first, blank }) {
        if (first === GREATER_THAN) {
          any = true;
          onRecordStart(start);
        } else if (!any && !blank) {
          throw new RecordFormatError('has text before its first ">" header line', number);
        }
      },
      end() {
        if (!any) throw new RecordFormatError('has no FASTA records (no line starts with ">")');
      },
    };
  },

  /**
   * Four lines: `@` header, sequence, `+` separator, qualities. Blank lines between records are
   * tolerated and stay with the record before.
   */
  fastq(onRecordStart) {
    let any = false;
    /** Which of the record's four lines comes next (0 = a new record's header). */
    let next = 0;
    let headerLine = 0;
    return {
      line({ start, number, first, blank }) {
        if (next === 0) {
          if (blank) return;
          if (first !== AT_SIGN) {
            throw new RecordFormatError('has a record that does not start with "@"', number);
          }
          any = true;
          headerLine = number;
          onRecordStart(start);
        } else if (next === 2 && first !== PLUS) {
          throw new RecordFormatError(`has a record (from line ${headerLine}) whose third line does not start with "+"`, number);
        }
        next = (next + 1) % 4;
      },
      end() {
        if (next !== 0) {
          throw new RecordFormatError(`ends inside a record: it has ${next} of its 4 lines`, headerLine);
        }
        if (!any) throw new RecordFormatError('has no FASTQ records');
      },
    };
  },
};
