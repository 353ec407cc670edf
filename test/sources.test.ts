import { readFileSync, readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sandbox } from './harness.js';

/** Every task source, run for real: each task writes what it saw into its own output folder. */
describe('task sources', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  async function runJob(job: string): Promise<Record<string, string>> {
    box.write('job.yaml', job);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    const outdir = box.path('fanout-out', 'job');
    const seen: Record<string, string> = {};
    for (const name of readdirSync(outdir).filter((n) => !n.startsWith('.'))) {
      seen[name] = readFileSync(`${outdir}/${name}/seen.txt`, 'utf8').trim();
    }
    return seen;
  }

  it('each: scalar values, named by value', async () => {
    expect(await runJob('command: echo {{ item }}-{{ index }} > {{ out }}/seen.txt\ntasks:\n  each: [a, b, c]\n')).toEqual({
      a: 'a-0',
      b: 'b-1',
      c: 'c-2',
    });
  });

  it('each: maps, each key a variable, shared vars and --set', async () => {
    box.write(
      'job.yaml',
      'command: echo {{ sample }} {{ genome }} > {{ out }}/seen.txt\ntasks:\n  each:\n    - {name: x, sample: s1}\n    - {name: y, sample: s2}\nvars:\n  genome: hg19\n',
    );
    const result = await box.run(['run', 'job.yaml', '--set', 'genome=hg38']);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(box.path('fanout-out/job/x/seen.txt'), 'utf8')).toBe('s1 hg38\n');
    expect(readFileSync(box.path('fanout-out/job/y/seen.txt'), 'utf8')).toBe('s2 hg38\n');
  });

  it('matrix: one task per combination', async () => {
    const seen = await runJob('command: echo {{ k }}{{ n }} > {{ out }}/seen.txt\ntasks:\n  matrix:\n    k: [a, b]\n    n: [1, 2]\n');
    expect(Object.values(seen).sort()).toEqual(['a1', 'a2', 'b1', 'b2']);
  });

  it('files: one task per file, named by stem', async () => {
    box.write('data/s1.fastq.gz', 'x');
    box.write('data/s2.fastq.gz', 'yy');
    const seen = await runJob('command: wc -c < {{ file }} > {{ out }}/seen.txt\ntasks:\n  files: data/*.fastq.gz\n');
    expect(seen).toEqual({ s1: '1', s2: '2' });
  });

  it('folders: one task per child folder', async () => {
    box.write('runs/r1/a.txt', '1');
    box.write('runs/r2/a.txt', '1');
    box.write('runs/r2/b.txt', '1');
    const seen = await runJob('command: ls {{ folder }} | wc -l > {{ out }}/seen.txt\ntasks:\n  folders: runs\n');
    expect(seen).toEqual({ r1: '1', r2: '2' });
  });

  it('table: one task per row, columns become variables', async () => {
    box.write('samples.csv', 'name,condition,sample id\nA,"treated, 2h",1\nB,control,2\n');
    const seen = await runJob('command: echo {{ condition }}/{{ sample_id }} > {{ out }}/seen.txt\ntasks:\n  table: samples.csv\n');
    expect(seen).toEqual({ A: 'treated, 2h/1', B: 'control/2' });
  });

  it('chunks: a FASTA split on record boundaries, every record in exactly one chunk', async () => {
    const records = Array.from({ length: 40 }, (_, i) => `>seq${i} description\nACGT${'A'.repeat(i)}\nTTTT\n`);
    box.write('big.fa', records.join(''));
    const seen = await runJob('command: grep -c ">" {{ chunk }} > {{ out }}/seen.txt\ntasks:\n  chunks:\n    file: big.fa\n    count: 4\n');
    expect(Object.keys(seen)).toHaveLength(4);
    expect(Object.values(seen).reduce((sum, n) => sum + Number(n), 0)).toBe(40);
  });
});

/** File names are data, never code: spaces, quotes, newlines, $() and backticks included. */
describe('templates and quoting', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  it('runs hostile file names as data', async () => {
    const names = ['with space', "it's", 'new\nline', '$(touch PWNED)', '`touch PWNED2`', 'semi;colon', 'dollar $HOME'];
    for (const name of names) box.write(`data/${name}.txt`, name);
    box.write('job.yaml', 'command: cat {{ file }} > {{ out }}/seen.txt; printf "%s" "$FANOUT_NAME" > {{ out }}/env.txt\ntasks:\n  files: data/*.txt\n');
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    for (const name of names) {
      expect(readFileSync(box.path('fanout-out/job', name, 'seen.txt'), 'utf8')).toBe(name);
      expect(readFileSync(box.path('fanout-out/job', name, 'env.txt'), 'utf8')).toBe(name);
    }
    const everything = readdirSync(box.dir, { recursive: true }).map(String);
    expect(everything.filter((p) => p.includes('PWNED') && !p.startsWith('data') && !p.includes('fanout-out'))).toEqual([]);
  });

  it('raw inserts verbatim; the environment has every variable', async () => {
    box.write(
      'job.yaml',
      [
        'command: echo {{ flags | raw }} "$FANOUT_ITEM" "$FANOUT_TASK" "$FANOUT_ATTEMPT" "$FANOUT_GREETING" > {{ out }}/seen.txt; test "$FANOUT_OUT" = {{ out }}',
        'tasks:',
        '  each: [x]',
        'vars:',
        '  flags: "-n one  two"',
        '  greeting: hi there',
        '',
      ].join('\n'),
    );
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(box.path('fanout-out/job/x/seen.txt'), 'utf8')).toBe('one two x x 1 hi there');
  });

  it('render prints the exact command without running it', async () => {
    box.write("data/a b's.txt", '');
    box.write('job.yaml', 'command: wc -l {{ file }} > {{ out }}/n\ntasks:\n  files: data/*.txt\n');
    const result = await box.run(['render', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`wc -l '${box.path('data')}/a b'\\''s.txt' > `);
    expect(readdirSync(box.dir)).not.toContain('fanout-out');
  });
});
