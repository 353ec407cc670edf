import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandFiles, fileStem } from './files.js';
import { jobFileError, tempDir, testContext } from './fixtures/test-context.js';

const ctx = testContext();

async function touch(dir: string, ...paths: string[]): Promise<void> {
  for (const path of paths) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), 'x');
  }
}

describe('fileStem', () => {
  it.each([
    ['/d/s1.fastq', 's1'],
    ['/d/s1.fastq.gz', 's1'],
    ['/d/s1.fq.bz2', 's1'],
    ['/d/s1.vcf.bgz', 's1'],
    ['/d/s1.txt.xz', 's1'],
    ['/d/s1.tar.zst', 's1'],
    ['/d/s1.gz', 's1'],
    ['/d/a.b.c', 'a.b'],
    ['/d/README', 'README'],
    ['/d/s1.zip', 's1'],
  ])('%s → %s', (file, stem) => {
    expect(fileStem(file)).toBe(stem);
  });
});

describe('expandFiles', () => {
  it('passes names with spaces, quotes, newlines, $() and backticks through verbatim', async () => {
    const dir = await tempDir();
    const names = ['a b', `q"uo'te`, 'new\nline', '$(touch pwned)', '`id`'];
    await touch(dir, ...names.map((name) => `data/${name}.fq.gz`));

    const seeds = await expandFiles('data/*.fq.gz', dir, ctx);

    const files = names.map((name) => join(dir, 'data', `${name}.fq.gz`)).sort();
    expect(seeds).toEqual(
      files.map((file, index) => ({
        index,
        name: fileStem(file),
        vars: { file },
        inputs: [file],
      })),
    );
    expect(seeds.map((seed) => seed.name).sort()).toEqual([...names].sort());
  });

  it('matches from cwd, sorts by path, and skips hidden files, hidden folders and folders', async () => {
    const dir = await tempDir();
    await touch(dir, 'b/2.txt', 'a/z.txt', 'a/B.txt', '.hidden.txt', '.git/x.txt', 'b/.h.txt');
    await mkdir(join(dir, 'folder.txt'));

    const seeds = await expandFiles('**/*.txt', dir, ctx);

    expect(seeds.map((seed) => seed.vars.file)).toEqual([join(dir, 'a/B.txt'), join(dir, 'a/z.txt'), join(dir, 'b/2.txt')]);
    expect(seeds.map((seed) => seed.index)).toEqual([0, 1, 2]);
  });

  it('uses absolute globs as given, whatever cwd is', async () => {
    const dir = await tempDir();
    await touch(dir, 'in/x.csv');
    const seeds = await expandFiles(join(dir, 'in/*.csv'), '/', ctx);
    expect(seeds.map((seed) => seed.vars.file)).toEqual([join(dir, 'in/x.csv')]);
  });

  it('matches relative globs that climb out of cwd', async () => {
    const dir = await tempDir();
    await touch(dir, 'data/x.fq', 'job/job.yaml');
    const seeds = await expandFiles('../data/*.fq', join(dir, 'job'), ctx);
    expect(seeds.map((seed) => seed.vars.file)).toEqual([join(dir, 'data/x.fq')]);
  });

  it('follows symbolic links to files', async () => {
    const dir = await tempDir();
    await touch(dir, 'real/r.txt');
    await mkdir(join(dir, 'links'));
    await symlink(join(dir, 'real/r.txt'), join(dir, 'links/l.txt'));
    const seeds = await expandFiles('links/*', dir, ctx);
    expect(seeds.map((seed) => seed.name)).toEqual(['l']);
  });

  it('treats a bare folder name as a file name, not as everything below it', async () => {
    const dir = await tempDir();
    await touch(dir, 'data/x.txt');
    await jobFileError(() => expandFiles('data', dir, ctx), 'tasks.files');
  });

  it('reports a glob that matches nothing with the folder it matched from', async () => {
    const dir = await tempDir();
    await touch(dir, 'data/.only-hidden.fq');
    const error = await jobFileError(() => expandFiles('data/*.fq', dir, ctx), 'tasks.files');
    expect(error.message).toContain(`the glob "data/*.fq" matches no files in ${dir}`);
    expect(error.fix).toBe('check the path and pattern');

    const absolute = await jobFileError(() => expandFiles(`${dir}/data/*/*.fq`, '/', ctx), 'tasks.files');
    expect(absolute.message).toContain(`matches no files in ${dir}/data `);
  });

  it('rejects two files with the same stem, naming both', async () => {
    const dir = await tempDir();
    await touch(dir, 'a/s1.fq', 'b/s1.fq.gz');
    const error = await jobFileError(() => expandFiles('*/s1.*', dir, ctx), 'tasks.files');
    expect(error.message).toContain(`"s1" comes from both ${join(dir, 'a/s1.fq')} and ${join(dir, 'b/s1.fq.gz')}`);
  });

  it('rejects a stem too long to be a task name', async () => {
    const dir = await tempDir();
    const long = 'a'.repeat(210);
    await touch(dir, `${long}.txt`);
    const error = await jobFileError(() => expandFiles('*.txt', dir, ctx), 'tasks.files');
    expect(error.message).toContain(`(from ${join(dir, `${long}.txt`)}) is 210 bytes long`);
  });
});
