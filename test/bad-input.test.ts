import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sandbox } from './harness.js';

/**
 * Every bad input is refused before any task runs (exit 2, no run recorded), with one message
 * naming the file, line and field and what would fix it.
 */
describe('bad input', () => {
  let box: Sandbox;
  beforeEach(() => {
    box = new Sandbox();
    box.write('data/a.txt', 'a\n');
  });
  afterEach(() => box.cleanup());

  async function refused(job: string, expected: RegExp[], file = 'job.yaml') {
    box.write(file, job);
    const result = await box.run(['run', file]);
    expect(result.code, result.stderr).toBe(2);
    const message = result.stderr.trim();
    expect(message.split('\n')).toHaveLength(1);
    for (const pattern of expected) expect(message).toMatch(pattern);
    // Nothing ran: no run was recorded and no task output exists.
    expect(existsSync(box.path('fanout-out'))).toBe(false);
    if (existsSync(box.path('.fanout', 'state.db'))) expect(box.query('SELECT id FROM runs')).toEqual([]);
    return message;
  }

  it('malformed YAML names the line', async () => {
    await refused('command: echo\ntasks:\n  each: [1, 2\n', [/job\.yaml:\d+/, /not valid YAML/]);
  });

  it('an unknown field names its line and suggests the right one', async () => {
    await refused('command: echo {{ item }}\ntasks:\n  each: [1]\nconcurency: 2\n', [/job\.yaml:4: concurency: unknown field/, /did you mean "concurrency"/]);
  });

  it('an unknown nested field names its path', async () => {
    await refused('command: echo\ntasks:\n  each: [1]\nresources:\n  mem: 4GB\n', [/job\.yaml:5: resources\.mem: unknown field/, /memory/]);
  });

  it('a wrong type names the field', async () => {
    await refused('command: echo\ntasks:\n  each: [1]\nconcurrency: many\n', [/job\.yaml:4: concurrency: must be/]);
  });

  it('a memory without a unit says how to write one', async () => {
    await refused('command: echo\ntasks:\n  each: [1]\nresources:\n  memory: lots\n', [/job\.yaml:5: resources\.memory/, /e\.g\. 512MB/]);
  });

  it('a missing input folder', async () => {
    await refused('command: echo {{ folder }}\ntasks:\n  folders: nowhere\n', [/job\.yaml:3: tasks\.folders/, /nowhere/]);
  });

  it('a missing table file', async () => {
    await refused('command: echo\ntasks:\n  table: samples.csv\n', [/job\.yaml:3: tasks\.table/, /samples\.csv/]);
  });

  it('a glob that matches nothing', async () => {
    await refused('command: cat {{ file }}\ntasks:\n  files: data/*.fastq\n', [/job\.yaml:3: tasks\.files/, /data\/\*\.fastq/]);
  });

  it('a table with a ragged row names the table line too', async () => {
    box.write('samples.csv', 'name,reads\ns1,a.fq\ns2,b.fq,extra\n');
    await refused('command: echo {{ reads }}\ntasks:\n  table: samples.csv\n', [/job\.yaml:3/, /tasks\.table/, /samples\.csv:3/]);
  });

  it('a FASTA without records', async () => {
    box.write('empty.fa', '\n');
    await refused('command: cat {{ chunk }}\ntasks:\n  chunks:\n    file: empty.fa\n    count: 2\n', [/job\.yaml:4: tasks\.chunks\.file/, /empty\.fa/]);
  });

  it('a resource request larger than the machine', async () => {
    await refused('command: echo\ntasks:\n  each: [1]\nresources:\n  memory: 100TB\n', [/job\.yaml:5: resources\.memory/, /this machine has/]);
  });

  it('more cpus than the machine has', async () => {
    await refused('command: echo\ntasks:\n  each: [1]\nresources:\n  cpus: 4096\n', [/job\.yaml:5: resources\.cpus/, /at most/]);
  });

  it('a template naming an unknown variable', async () => {
    await refused('command: cat {{ fil }}\ntasks:\n  files: data/*.txt\n', [/job\.yaml:1: command/, /\{\{ fil \}\}/, /did you mean \{\{ file \}\}/]);
  });

  it('a template with a bad filter', async () => {
    await refused('command: cat {{ file | upper }}\ntasks:\n  files: data/*.txt\n', [/job\.yaml:1: command/, /unknown filter "upper"/]);
  });

  it('both command and script', async () => {
    await refused('command: echo\nscript: |\n  echo\ntasks:\n  each: [1]\n', [/job\.yaml:2: script/, /keep one/]);
  });

  it('two task sources', async () => {
    await refused('command: echo\ntasks:\n  each: [1]\n  files: data/*.txt\n', [/tasks\.files/, /exactly one/]);
  });

  it('a JSON job file names its line too', async () => {
    await refused('{\n  "command": "echo",\n  "tasks": {"each": [1]},\n  "retry": {"max": -1}\n}\n', [/job\.json:4: retry\.max/], 'job.json');
  });

  it('a missing job file', async () => {
    const result = await box.run(['run', 'nope.yaml']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/nope\.yaml cannot be read/);
  });

  it('an unknown command or flag is a usage error', async () => {
    expect((await box.run(['frobnicate'])).code).toBe(2);
    expect((await box.run(['run', '--bogus', 'x.yaml'])).code).toBe(2);
  });
});
