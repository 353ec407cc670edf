import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandChunks, type ChunksSource } from './chunks.js';
import { generateFastq } from './fixtures/records.js';
import { jobFileError, tempDir, testContext } from './fixtures/test-context.js';

async function setup(name: string, text: string) {
  const dir = await tempDir();
  const file = join(dir, name);
  await writeFile(file, text);
  return { file, ctx: testContext(join(dir, 'home', 'chunks')) };
}

async function contents(paths: string[]): Promise<string[]> {
  return Promise.all(paths.map((path) => readFile(path, 'utf8')));
}

describe('expandChunks', () => {
  it('writes whole-record chunk files and makes one task per chunk', async () => {
    const fastq = generateFastq(400_000);
    const { file, ctx } = await setup('reads.fastq', fastq.text);

    const seeds = await expandChunks({ file, format: 'fastq', count: 4 }, ctx, {
      highWaterMark: 509,
    });

    expect(seeds.map((seed) => seed.name)).toEqual(['chunk-00000', 'chunk-00001', 'chunk-00002', 'chunk-00003']);
    const chunks = seeds.map((seed) => seed.vars.chunk ?? '');
    seeds.forEach((seed, index) => {
      expect(seed.index).toBe(index);
      expect(seed.inputs).toEqual([seed.vars.chunk]);
      expect(seed.vars.chunk).toMatch(/^\/.*\/home\/chunks\/[0-9a-f]{16}\/chunk-0000\d\.fq$/);
    });
    const texts = await contents(chunks);
    expect(texts.join('')).toBe(fastq.text);
    for (const text of texts) expect(text).toMatch(/^@read\d+ /);
  });

  it('names chunk files by format', async () => {
    const fasta = await setup('g.fa', '>a\nAC\n>b\nGT\n');
    const [fa] = await expandChunks({ file: fasta.file, format: 'fasta', sizeBytes: 6 }, fasta.ctx);
    expect(fa?.vars.chunk).toMatch(/chunk-00000\.fa$/);

    const lines = await setup('list', 'x\ny\nz\n');
    const seeds = await expandChunks({ file: lines.file, format: 'lines', count: 2 }, lines.ctx);
    expect(seeds.map((seed) => seed.vars.chunk?.slice(-15))).toEqual(['chunk-00000.txt', 'chunk-00001.txt']);
    expect(await contents(seeds.map((seed) => seed.vars.chunk ?? ''))).toEqual(['x\ny\n', 'z\n']);
  });

  it('reuses a complete split without rewriting it', async () => {
    const { file, ctx } = await setup('list.txt', 'a\nb\nc\nd\n');
    const source: ChunksSource = { file, format: 'lines', sizeBytes: 4 };
    const first = await expandChunks(source, ctx);
    const chunk = first[0]?.vars.chunk ?? '';
    const written = await stat(chunk);
    // Tamper with a chunk: a reused split keeps it, a rewritten one would restore it.
    await writeFile(chunk, 'tampered');

    const second = await expandChunks(source, ctx);

    expect(second).toEqual(first);
    expect(await readFile(chunk, 'utf8')).toBe('tampered');
    expect((await stat(chunk)).ino).toBe(written.ino);
  });

  it('splits again into a new folder when the file or the settings change', async () => {
    const { file, ctx } = await setup('list.txt', 'a\nb\n');
    const [before] = await expandChunks({ file, format: 'lines', count: 2 }, ctx);
    const [otherCount] = await expandChunks({ file, format: 'lines', count: 1 }, ctx);
    await writeFile(file, 'c\nd\n');
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    const [changed] = await expandChunks({ file, format: 'lines', count: 2 }, ctx);

    const folders = new Set([before, otherCount, changed].map((seed) => join(seed?.vars.chunk ?? '', '..')));
    expect(folders.size).toBe(3);
    expect(await readFile(changed?.vars.chunk ?? '', 'utf8')).toBe('c\n');
  });

  it('never reuses an interrupted split', async () => {
    const { file, ctx } = await setup('list.txt', 'a\nb\n');
    const source: ChunksSource = { file, format: 'lines', count: 2 };
    const dir = join((await expandChunks(source, ctx))[0]?.vars.chunk ?? '', '..');
    // What a split killed midway leaves: a partial folder beside `dir`, and no `dir`.
    await rm(dir, { recursive: true });
    await mkdir(`${dir}.partial-killed`);
    await writeFile(`${dir}.partial-killed/chunk-00000.txt`, 'half');

    const again = await expandChunks(source, ctx);

    expect(await contents(again.map((seed) => seed.vars.chunk ?? ''))).toEqual(['a\n', 'b\n']);
  });

  it('replaces a chunk folder that has lost its marker', async () => {
    const { file, ctx } = await setup('list.txt', 'a\nb\n');
    const source: ChunksSource = { file, format: 'lines', count: 2 };
    const dir = join((await expandChunks(source, ctx))[0]?.vars.chunk ?? '', '..');
    await rm(join(dir, 'chunks.json'));
    await writeFile(join(dir, 'chunk-00000.txt'), 'half');

    const again = await expandChunks(source, ctx);

    expect(await contents(again.map((seed) => seed.vars.chunk ?? ''))).toEqual(['a\n', 'b\n']);
    expect(await readdir(dir)).toEqual(['chunk-00000.txt', 'chunk-00001.txt', 'chunks.json']);
  });

  it('gives concurrent splits of the same file the same chunks', async () => {
    const fastq = generateFastq(200_000);
    const { file, ctx } = await setup('r.fq', fastq.text);
    const source: ChunksSource = { file, format: 'fastq', count: 3 };
    const [a, b] = await Promise.all([expandChunks(source, ctx), expandChunks(source, ctx)]);
    expect(a).toEqual(b);
    expect((await contents(a?.map((s) => s.vars.chunk ?? '') ?? [])).join('')).toBe(fastq.text);
  });

  it('reports a missing file', async () => {
    const { ctx } = await setup('x', '');
    const missing = join(ctx.chunkDir, 'nope.fa');
    const error = await jobFileError(() => expandChunks({ file: missing, format: 'fasta', count: 2 }, ctx), 'tasks.chunks.file');
    expect(error.message).toContain(`the file ${missing} does not exist`);
  });

  it('reports a FASTA without records, naming the file, and leaves nothing behind', async () => {
    for (const text of ['', 'ACGT\n']) {
      const { file, ctx } = await setup('g.fa', text);
      const error = await jobFileError(() => expandChunks({ file, format: 'fasta', count: 2 }, ctx), 'tasks.chunks.file');
      expect(error.message).toContain(file);
      expect(await readdir(ctx.chunkDir)).toEqual([]);
    }
  });

  it('reports a malformed FASTQ with the file and line', async () => {
    const { file, ctx } = await setup('r.fq', '@a\nAC\n+\nII\n@b\nAC\nII\n+\n');
    const error = await jobFileError(() => expandChunks({ file, format: 'fastq', sizeBytes: 100 }, ctx), 'tasks.chunks.file');
    expect(error.message).toContain(`${file}:7: the FASTQ file has a record (from line 5)`);
  });
});
