import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobFileError, tempDir, testContext } from './fixtures/test-context.js';
import { expandFolders } from './folders.js';

const ctx = testContext();

describe('expandFolders', () => {
  it('passes names with spaces, quotes, newlines, $() and backticks through verbatim', async () => {
    const parent = await tempDir();
    const names = ['a b', `q"uo'te`, 'new\nline', '$(touch pwned)', '`id`'];
    for (const name of names) await mkdir(join(parent, name));

    const seeds = await expandFolders(parent, ctx);

    expect(seeds).toEqual(
      [...names].sort().map((name, index) => {
        const folder = join(parent, name);
        return { index, name, vars: { folder }, inputs: [folder] };
      }),
    );
  });

  it('takes child folders and links to them, in name order, without hidden ones or files', async () => {
    const parent = await tempDir();
    const elsewhere = await tempDir();
    for (const name of ['b', 'B', 'a', '.hidden']) await mkdir(join(parent, name));
    await writeFile(join(parent, 'file'), 'x');
    await symlink(elsewhere, join(parent, 'linked'));
    await symlink(join(parent, 'missing'), join(parent, 'dangling'));

    const seeds = await expandFolders(parent, ctx);

    expect(seeds.map((seed) => seed.name)).toEqual(['B', 'a', 'b', 'linked']);
  });

  it('reports a missing parent', async () => {
    const parent = join(await tempDir(), 'nope');
    const error = await jobFileError(() => expandFolders(parent, ctx), 'tasks.folders');
    expect(error.message).toContain(`the folder ${parent} does not exist`);
  });

  it('reports a parent that is a file', async () => {
    const parent = join(await tempDir(), 'file');
    await writeFile(parent, 'x');
    const error = await jobFileError(() => expandFolders(parent, ctx), 'tasks.folders');
    expect(error.message).toContain(`${parent} is a file, not a folder`);
  });

  it('reports a parent without child folders', async () => {
    const parent = await tempDir();
    await mkdir(join(parent, '.hidden'));
    await writeFile(join(parent, 'file'), 'x');
    const error = await jobFileError(() => expandFolders(parent, ctx), 'tasks.folders');
    expect(error.message).toContain(`the folder ${parent} has no child folders`);
  });

  it('rejects a folder name too long to be a task name', async () => {
    const parent = await tempDir();
    await mkdir(join(parent, 'x'.repeat(201)));
    const error = await jobFileError(() => expandFolders(parent, ctx), 'tasks.folders');
    expect(error.message).toContain('is 201 bytes long');
  });
});
