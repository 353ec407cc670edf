import { describe, expect, it } from 'vitest';
import { RecordFormatError, RecordScanner, type RecordFormat } from './split-records.js';

/** Record start offsets of `text`, fed `step` bytes at a time to cross buffer boundaries. */
function starts(format: RecordFormat, text: string, step = 1): number[] {
  const found: number[] = [];
  const scanner = new RecordScanner(format, (offset) => found.push(offset));
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += step) scanner.push(bytes.subarray(i, i + step));
  expect(scanner.end()).toBe(bytes.length);
  return found;
}

function formatError(format: RecordFormat, text: string): RecordFormatError {
  try {
    starts(format, text);
  } catch (error) {
    expect(error).toBeInstanceOf(RecordFormatError);
    return error as RecordFormatError;
  }
  return expect.unreachable();
}

describe('RecordScanner for FASTA', () => {
  const fasta = '>a\nAC\nGT\n>b desc\n\nTT\n>c\n';

  it('starts a record at each ">" line, whatever the buffer size', () => {
    for (const step of [1, 2, 3, 7, 1000]) expect(starts('fasta', fasta, step)).toEqual([0, 9, 21]);
  });

  it('allows blank lines before the first record and a missing final newline', () => {
    expect(starts('fasta', '\n  \r\n>a\nAC')).toEqual([5]);
  });

  it('rejects text before the first record, at its line', () => {
    const error = formatError('fasta', '\nACGT\n>a\nAC\n');
    expect([error.line, error.message]).toEqual([2, 'has text before its first ">" header line']);
  });

  it('rejects a file without records', () => {
    expect(formatError('fasta', '').message).toMatch(/no FASTA records/);
    expect(formatError('fasta', '\n\n').line).toBeUndefined();
  });
});

describe('RecordScanner for FASTQ', () => {
  const record = (name: string) => `@${name}\nACGT\n+\nIIII\n`;

  it('starts a record every four lines, keeping blank lines with the record before', () => {
    const text = `${record('a')}${record('b')}\n\n${record('c')}`;
    expect(starts('fastq', text, 5)).toEqual([0, 15, 32]);
  });

  it('accepts "+" lines that repeat the name and "@" as a quality character', () => {
    expect(starts('fastq', '@r1\nAC\n+r1\n@I\n@r2\nAC\n+\nII')).toEqual([0, 14]);
  });

  it('rejects a record that does not start with "@", at its line', () => {
    const error = formatError('fastq', `${record('a')}>b\nAC\n+\nII\n`);
    expect([error.line, error.message]).toEqual([5, 'has a record that does not start with "@"']);
  });

  it('rejects a third line without "+", at that line', () => {
    const error = formatError('fastq', `${record('a')}@b\nAC\nII\n+\n`);
    expect(error.line).toBe(7);
    expect(error.message).toMatch(/record \(from line 5\) whose third line does not start with "\+"/);
  });

  it('rejects a truncated last record, at its first line', () => {
    const error = formatError('fastq', `${record('a')}@b\nAC\n`);
    expect([error.line, error.message]).toEqual([5, 'ends inside a record: it has 2 of its 4 lines']);
  });

  it('rejects a file without records', () => {
    expect(formatError('fastq', '\n').message).toBe('has no FASTQ records');
  });
});

describe('RecordScanner for lines', () => {
  it('starts a record at every line, blank ones included', () => {
    expect(starts('lines', 'a\n\nbc\r\nd', 2)).toEqual([0, 2, 3, 7]);
  });

  it('rejects an empty file', () => {
    expect(formatError('lines', '').message).toBe('is empty');
  });
});
