import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandTasks } from './expand-tasks.js';
import { tempDir, testContext } from './fixtures/test-context.js';

describe('expandTasks', () => {
  it('dispatches every kind of source to its expander', async () => {
    const dir = await tempDir();
    const ctx = testContext(join(dir, 'chunks'));
    await mkdir(join(dir, 'samples/s1'), { recursive: true });
    await writeFile(join(dir, 'samples/s1/r.fq.gz'), '');
    await writeFile(join(dir, 't.csv'), 'name,x\nrow,1\n');
    await writeFile(join(dir, 'l.txt'), 'one\n');

    const names = async (source: Parameters<typeof expandTasks>[0]) => (await expandTasks(source, ctx)).map((seed) => seed.name);

    expect(await names({ kind: 'each', items: ['a', 'b'] })).toEqual(['a', 'b']);
    expect(await names({ kind: 'matrix', axes: { k: [1, 2] } })).toEqual(['0', '1']);
    expect(await names({ kind: 'files', glob: 'samples/*/*.fq.gz', cwd: dir })).toEqual(['r']);
    expect(await names({ kind: 'folders', parent: join(dir, 'samples') })).toEqual(['s1']);
    expect(await names({ kind: 'table', file: join(dir, 't.csv') })).toEqual(['row']);
    expect(await names({ kind: 'chunks', file: join(dir, 'l.txt'), format: 'lines', count: 1 })).toEqual(['chunk-00000']);
  });
});
