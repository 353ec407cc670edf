import { chmodSync, existsSync, symlinkSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sandbox } from './harness.js';
import { expectRefused } from './refused.js';

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
    return expectRefused(box, ['run', file], expected);
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

  it('a YAML alias bomb is refused as a job-file error, not an internal error', async () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const [i, name] of ['b', 'c', 'd', 'e', 'f'].entries()) levels.push(`${name}: &${name} [${Array(9).fill(`*${'abcde'[i]}`).join(', ')}]`);
    await refused(`${levels.join('\n')}\ncommand: echo\ntasks:\n  each: *f\n`, [/job\.yaml: /, /aliases/, /write the values out/]);
  });

  it('a job file past the size cap points at table: and files:', async () => {
    const items = Array.from({ length: 200_000 }, (_, i) => `  - ${i}`).join('\n');
    await refused(`command: echo {{ item }}\ntasks:\n  each:\n${items}\n`, [/job\.yaml: /, /more than the 1\.0 MB/, /tasks\.table/, /tasks\.files/]);
  });

  it('a matrix with too many combinations', async () => {
    const axis = `[${Array.from({ length: 101 }, (_, i) => i).join(', ')}]`;
    await refused(`command: echo {{ a }}{{ b }}{{ c }}\ntasks:\n  matrix:\n    a: ${axis}\n    b: ${axis}\n    c: ${axis}\n`, [
      /job\.yaml:\d+: tasks\.matrix/,
      /1030301 combinations/,
      /tasks\.table/,
    ]);
  });

  it('retry.max has an upper bound', async () => {
    await refused('command: echo\ntasks:\n  each: [1]\nretry:\n  max: 1000000000000\n', [/job\.yaml:5: retry\.max: must be at most 100/]);
  });

  it("--set of a name the job does not declare names the job's variables", async () => {
    box.write('job.yaml', 'command: echo {{ item }} {{ db }}\nvars:\n  db: a.db\n  level: 3\ntasks:\n  each: [1]\n');
    for (const command of ['run', 'validate']) {
      const result = await box.run([command, 'job.yaml', '--set', 'nosuch=1']);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/--set nosuch=1: the job .*job\.yaml has no variable "nosuch"/);
      expect(result.stderr).toMatch(/only these: db, level/);
    }
    expect(existsSync(box.path('fanout-out'))).toBe(false);
    // Refused before anything was recorded: no home is left where there was none.
    expect(existsSync(box.path('.fanout'))).toBe(false);
    expect((await box.run(['validate', 'job.yaml', '--set', 'level=4'])).code).toBe(0);
  });

  it('a symbolic link loop among the folders names the link', async () => {
    box.write('in/s1/f', 'x');
    symlinkSync('loopB', box.path('in', 'loopA'));
    symlinkSync('loopA', box.path('in', 'loopB'));
    await refused('command: ls {{ folder }}\ntasks:\n  folders: in\n', [/job\.yaml:3: tasks\.folders/, /in\/loop[AB] is a symbolic link loop/, /remove the link/]);
  });

  it('a symbolic link loop as the folder of folders: names it', async () => {
    symlinkSync('samples', box.path('samples'));
    await refused('command: ls {{ folder }}\ntasks:\n  folders: samples\n', [/job\.yaml:3: tasks\.folders/, /samples is a symbolic link loop/, /remove the link/]);
  });

  it('a symbolic link loop inside a task folder names the link', async () => {
    box.write('in/s1/f', 'x');
    symlinkSync('self', box.path('in', 's1', 'self'));
    await refused('command: ls {{ folder }}\ntasks:\n  folders: in\n', [/job\.yaml:3: tasks\.folders/, /in\/s1\/self is a symbolic link loop/]);
  });

  it('an unreadable table file', async () => {
    box.write('samples.csv', 'name,reads\ns1,a.fq\n');
    chmodSync(box.path('samples.csv'), 0o000);
    box.write('job.yaml', 'command: echo {{ reads }}\ntasks:\n  table: samples.csv\n');
    // root reads any file: run fanout as an unprivileged user (nobody), as most users are.
    const result = await box.run(['validate', 'job.yaml'], { asNobody: true });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/job\.yaml:3: tasks\.table: the table .*samples\.csv cannot be read \(EACCES\); make it readable/);
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
