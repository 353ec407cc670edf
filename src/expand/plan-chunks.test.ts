import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateFasta, generateFastq } from './fixtures/records.js';
import { tempDir } from './fixtures/test-context.js';
import { planChunks, type ByteRange, type ChunkRule } from './plan-chunks.js';
import type { RecordFormat } from './split-records.js';

async function plan(format: RecordFormat, text: string, rule: ChunkRule, highWaterMark?: number): Promise<ByteRange[]> {
  const file = join(await tempDir(), 'input');
  await writeFile(file, text);
  return planChunks(file, format, rule, Buffer.byteLength(text), { highWaterMark });
}

const ranges = (...bounds: number[]): ByteRange[] => bounds.slice(0, -1).map((start, i) => ({ start, end: bounds[i + 1] ?? 0 }));

describe('planChunks by count', () => {
  it('cuts at the first record start at or past each size / count target', async () => {
    // 10 records of 5 bytes: targets at 16.7 and 33.3 bytes.
    expect(await plan('lines', 'aaaa\n'.repeat(10), { count: 3 })).toEqual(ranges(0, 20, 35, 50));
  });

  it('makes fewer chunks when there are fewer records', async () => {
    expect(await plan('lines', 'a\nb\n', { count: 5 })).toEqual(ranges(0, 2, 4));
  });

  it('lets one big record swallow several targets without exceeding count', async () => {
    const record = (name: string, length: number) => `>${name}\n${'A'.repeat(length)}\n`;
    const text = record('a', 6) + record('b', 96) + record('c', 6) + record('d', 6);
    expect(await plan('fasta', text, { count: 4 })).toEqual(ranges(0, 110, 130));
  });

  it('makes one chunk for count 1, leaving out blank lines before the first record', async () => {
    expect(await plan('fasta', '\n\n>a\nAC\n>b\nGT\n', { count: 1 })).toEqual(ranges(2, 14));
  });
});

describe('planChunks by size', () => {
  it('fills each chunk up to the limit', async () => {
    expect(await plan('lines', 'abcd\n'.repeat(5), { sizeBytes: 12 })).toEqual(ranges(0, 10, 20, 25));
    expect(await plan('lines', 'abcde\n'.repeat(4), { sizeBytes: 12 })).toEqual(ranges(0, 12, 24));
  });

  it('gives a record bigger than the limit a chunk of its own', async () => {
    const text = `a\n${'b'.repeat(29)}\nc\nd\n`;
    expect(await plan('lines', text, { sizeBytes: 4 })).toEqual(ranges(0, 2, 32, 36));
  });
});

describe('planChunks on a multi-megabyte file read in small buffers', () => {
  const fastq = generateFastq(6_000_000);
  const fasta = generateFasta(3_000_000);

  /** Checks that the ranges tile the file from its first record and start only at records. */
  function expectWholeRecords(found: ByteRange[], starts: number[], size: number): void {
    const recordStarts = new Set(starts);
    expect(found[0]?.start).toBe(starts[0]);
    expect(found.at(-1)?.end).toBe(size);
    found.forEach((range, i) => {
      expect(recordStarts.has(range.start)).toBe(true);
      expect(range.end).toBe(found[i + 1]?.start ?? size);
    });
  }

  it('splits FASTQ by count into about equal chunks', async () => {
    const size = fastq.text.length;
    const found = await plan('fastq', fastq.text, { count: 7 }, 1021);
    expect(found).toHaveLength(7);
    expectWholeRecords(found, fastq.starts, size);
    for (const range of found.slice(0, -1)) {
      // A chunk overshoots its target by less than one record (at most ~850 bytes here).
      expect(Math.abs(range.end - range.start - size / 7)).toBeLessThan(2000);
    }
  });

  it('splits FASTQ by size without exceeding the limit', async () => {
    const found = await plan('fastq', fastq.text, { sizeBytes: 100_000 }, 4093);
    expectWholeRecords(found, fastq.starts, fastq.text.length);
    for (const range of found) expect(range.end - range.start).toBeLessThanOrEqual(100_000);
    expect(found.length).toBeGreaterThanOrEqual(60);
  });

  it('splits FASTA whose records straddle every buffer boundary', async () => {
    const found = await plan('fasta', fasta.text, { count: 50 }, 257);
    expect(found).toHaveLength(50);
    expectWholeRecords(found, fasta.starts, fasta.text.length);
  });

  it('handles a single line far longer than the read buffer', async () => {
    const text = `>chr1\n${'A'.repeat(300_000)}\n>chr2\nAC\n`;
    expect(await plan('fasta', text, { sizeBytes: 10 }, 64)).toEqual(ranges(0, 300_007, text.length));
  });
});
