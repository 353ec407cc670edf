import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobFileError, tempDir, testContext } from './fixtures/test-context.js';
import { expandTable } from './table.js';

const ctx = testContext();

async function table(name: string, text: string): Promise<string> {
  const file = join(await tempDir(), name);
  await writeFile(file, text);
  return file;
}

describe('expandTable', () => {
  it('makes one task per row, columns as variables, named by the first column', async () => {
    const file = await table('samples.csv', 'sample,reads\ns1,"1,000"\ns2,5\n');
    expect(await expandTable(file, ctx)).toEqual([
      { index: 0, name: 's1', vars: { sample: 's1', reads: '1,000' }, inputs: [], origin: `${file}:2` },
      { index: 1, name: 's2', vars: { sample: 's2', reads: '5' }, inputs: [], origin: `${file}:3` },
    ]);
  });

  it('names tasks by the `name` column when there is one', async () => {
    const file = await table('t.csv', 'path,name\n/a,first\n/a,second\n');
    const seeds = await expandTable(file, ctx);
    expect(seeds.map((seed) => [seed.name, seed.vars])).toEqual([
      ['first', { path: '/a' }],
      ['second', { path: '/a' }],
    ]);
  });

  it('passes values with quotes, newlines, $() and backticks through verbatim', async () => {
    const file = await table('t.csv', 'name,cmd\n"a ""b""","$(x)\n`y`"\n');
    expect(await expandTable(file, ctx)).toEqual([{ index: 0, name: 'a "b"', vars: { cmd: '$(x)\n`y`' }, inputs: [], origin: `${file}:2` }]);
  });

  it.each(['t.tsv', 't.TAB'])('reads %s as tab-separated, without quoting', async (name) => {
    const file = await table(name, 'id\tnote\nx\t"a,b"\n');
    expect((await expandTable(file, ctx))[0]?.vars).toEqual({ id: 'x', note: '"a,b"' });
  });

  it('turns column headers into variable names', async () => {
    const file = await table('t.csv', 'Sample ID,read-1 (R1),2nd\ns,r,x\n');
    expect((await expandTable(file, ctx))[0]?.vars).toEqual({
      Sample_ID: 's',
      read_1_R1: 'r',
      _2nd: 'x',
    });
  });

  it('rejects a column whose variable name would be empty', async () => {
    const file = await table('t.csv', 'a,%%\n1,2\n');
    const error = await jobFileError(() => expandTable(file, ctx), 'tasks.table');
    expect(error.message).toContain(`column 2 ("%%") of ${file} has no letters or digits`);
    expect(error.fix).toBe('rename the column');
  });

  it('rejects two columns that give the same variable, naming both', async () => {
    const file = await table('t.csv', 'x,sample id,sample-id\n1,2,3\n');
    const error = await jobFileError(() => expandTable(file, ctx), 'tasks.table');
    expect(error.message).toContain(`column 3 ("sample-id") of ${file} and column 2 ("sample id") both give the variable "sample_id"`);
  });

  it('rejects a column named like a built-in variable', async () => {
    const file = await table('t.csv', 'name,out\n1,2\n');
    const error = await jobFileError(() => expandTable(file, ctx), 'tasks.table');
    expect(error.message).toContain(`column 2 ("out") of ${file} becomes the reserved variable "out"`);
  });

  it('reports a ragged row at the table line where it starts, with both counts', async () => {
    const file = await table('t.csv', 'a,b,c\r\n1,"two\r\nlines",3\r\n\r\n4,5\r\n');
    const error = await jobFileError(() => expandTable(file, ctx), 'tasks.table');
    expect(error.message).toBe(`/jobs/job.yaml:7: tasks.table: the row at ${file}:5 has 2 fields but the header has 3`);
    expect(error.fix).toBe('make every row have 3 fields; quote fields that contain commas');
  });

  it('reports CSV syntax errors at their table line', async () => {
    const file = await table('t.csv', 'a\n"open\n');
    const error = await jobFileError(() => expandTable(file, ctx), 'tasks.table');
    expect(error.message).toContain(`${file}:2: a quoted field is never closed`);
  });

  it('rejects duplicate names, naming both rows and suggesting a name column', async () => {
    const file = await table('t.csv', 'sample,lane\ns1,1\ns1,2\n');
    const error = await jobFileError(() => expandTable(file, ctx), 'tasks.table');
    expect(error.message).toContain(`"s1" comes from both ${file}:2 and ${file}:3`);
    expect(error.fix).toBe('add a unique `name` column');
  });

  it('rejects an invalid name', async () => {
    const file = await table('t.csv', 'path\n/data/a\n');
    const error = await jobFileError(() => expandTable(file, ctx), 'tasks.table');
    expect(error.message).toContain(`"/data/a" (from ${file}:2) contains "/"`);
  });

  it('reports a missing table, an empty one, and one with only a header', async () => {
    const dir = await tempDir();
    const missing = await jobFileError(() => expandTable(join(dir, 'no.csv'), ctx), 'tasks.table');
    expect(missing.message).toContain(`the table ${join(dir, 'no.csv')} does not exist`);

    const empty = await table('e.csv', '\n\n');
    expect((await jobFileError(() => expandTable(empty, ctx), 'tasks.table')).message).toContain('is empty');

    const headerOnly = await table('h.csv', 'a,b\n');
    const error = await jobFileError(() => expandTable(headerOnly, ctx), 'tasks.table');
    expect(error.message).toContain('has a header but no rows');
  });
});
