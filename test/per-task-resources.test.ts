import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HOG } from './conformance.js';
import { Sandbox } from './harness.js';
import { expectRefused } from './refused.js';
import { describeOn, runJobIds } from './schedulers.js';

/**
 * Resources per task: templates over a task's variables and expressions over its input's size
 * are computed at plan time, checked before anything runs, recorded on each task, enforced and
 * escalated from the task's own value.
 */

const MIB = 1024 ** 2;
const SLOW = 240_000;

interface TaskRow {
  name: string;
  cpus: number;
  memory: number | null;
  time_ms: number | null;
}

function recordedResources(box: Sandbox): TaskRow[] {
  return box.query<TaskRow>('SELECT name, cpus, memory, time_ms FROM tasks ORDER BY idx');
}

describe('per-task resources on the local backend', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  const job = (lines: string[]) => box.write('job.yaml', `${lines.join('\n')}\n`);

  /** Refused before anything ran: exit 2, one line, no run recorded, no output. */
  async function refused(expected: RegExp[]): Promise<string> {
    return expectRefused(box, ['run', 'job.yaml'], expected);
  }

  it('takes each row of a table its own memory, cpus and time, and records them on the task', async () => {
    box.write('samples.csv', 'name,mem,threads,minutes\na,100MB,1,5\nb,250MB,2,10\nc,1GiB,1,90\n');
    job([
      'command: echo {{ name }} > {{ out }}/v',
      'tasks:',
      '  table: samples.csv',
      'resources:',
      '  memory: "{{ mem }}"',
      '  cpus: "{{ threads }}"',
      '  time: "{{ minutes }}m"',
    ]);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    const listed = JSON.parse((await box.run(['tasks', '--json'])).stdout) as Array<{ name: string; memory: number }>;
    expect(listed.map((t) => [t.name, t.memory])).toEqual([
      ['a', 100e6],
      ['b', 250e6],
      ['c', 1024 * MIB],
    ]);
    expect(recordedResources(box)).toEqual([
      { name: 'a', cpus: 1, memory: 100e6, time_ms: 5 * 60_000 },
      { name: 'b', cpus: 2, memory: 250e6, time_ms: 10 * 60_000 },
      { name: 'c', cpus: 1, memory: 1024 * MIB, time_ms: 90 * 60_000 },
    ]);
    // Each attempt got its task's own limits.
    expect(box.query('SELECT idx, memory, time_ms FROM attempts WHERE idx >= 0 ORDER BY idx')).toEqual([
      { idx: 0, memory: 100e6, time_ms: 5 * 60_000 },
      { idx: 1, memory: 250e6, time_ms: 10 * 60_000 },
      { idx: 2, memory: 1024 * MIB, time_ms: 90 * 60_000 },
    ]);
  });

  it('refuses a row whose value is not a size before anything runs, naming the task, its row and the field', async () => {
    box.write('samples.csv', 'name,mem\na,100MB\nb,lots\n');
    job(['command: echo {{ name }} > {{ out }}/v', 'tasks:', '  table: samples.csv', 'resources:', '  memory: "{{ mem }}"']);
    const message = await refused([
      /job\.yaml:5: resources\.memory: /,
      /task "b" \(from .*samples\.csv:3\)/,
      /"lots" is not a size/,
      /e\.g\. 512MB or 4GB, in \{\{ mem \}\} of that task/,
    ]);
    expect(message).not.toMatch(/task "a"/);
  });

  it('refuses a row asking for more than the machine has, naming the task', async () => {
    box.write('samples.csv', 'name,mem\nsmall,100MB\nhuge,900TB\n');
    job(['command: echo {{ name }}', 'tasks:', '  table: samples.csv', 'resources:', '  memory: "{{ mem }}"']);
    await refused([/job\.yaml:5: resources\.memory: task "huge" \(from .*samples\.csv:3\) asks for 900 TB but this machine has/, /ask for at most/]);
  });

  it('refuses an expression that mixes units, and a size() of an unknown variable, before anything runs', async () => {
    box.write('data/a.txt', 'a\n');
    job(['command: cat {{ file }}', 'tasks:', '  files: data/*.txt', 'resources:', '  memory: "2GB + 3"']);
    await refused([/job\.yaml:5: resources\.memory: "2GB \+ 3" adds a size and a number; give the number a unit, e\.g\. 3MB/]);
    job(['command: cat {{ file }}', 'tasks:', '  files: data/*.txt', 'resources:', '  memory: "2GB + 3 * size(fle)"']);
    await refused([/job\.yaml:5: resources\.memory: size\(fle\) names a variable that a task does not have; did you mean size\(file\)\?/]);
  });

  it('sizes memory and time by each input file with size(file)', async () => {
    box.write('data/small.txt', 'x'.repeat(1000));
    box.write('data/big.txt', 'x'.repeat(3000));
    job([
      'command: wc -c < {{ file }} > {{ out }}/bytes',
      'tasks:',
      '  files: data/*.txt',
      'resources:',
      '  memory: "100MB + 1000 * size(file)"',
      '  time: "1m + 2s * size(file) / 1KB"',
      '  cpus: "size(file) / 1500B"',
    ]);
    const render = await box.run(['render', 'job.yaml', '--task', 'big']);
    expect(render.stdout, render.stderr).toContain('# resources: 2 cpus, memory 103 MB, time 1m06s');
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    // Tasks in path order: big, then small.
    expect(recordedResources(box)).toEqual([
      { name: 'big', cpus: 2, memory: 103e6, time_ms: 66_000 },
      { name: 'small', cpus: 1, memory: 101e6, time_ms: 62_000 },
    ]);
  });

  it('sizes each chunk of a split file with size(chunk)', async () => {
    box.write('reads.txt', Array.from({ length: 40 }, (_, i) => `line ${String(i).padStart(5, '0')}`).join('\n') + '\n');
    job(['command: wc -l < {{ chunk }} > {{ out }}/n', 'tasks:', '  chunks: {file: reads.txt, count: 4}', 'resources:', '  memory: "50MB + 1MB * size(chunk) / 1B"']);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    // 40 lines of 11 bytes in 4 chunks of 10 lines: 110 bytes each.
    expect(recordedResources(box).map((t) => t.memory)).toEqual([160e6, 160e6, 160e6, 160e6]);
  });

  it('enforces each task its own memory and escalates a retry from it', { timeout: 60_000 }, async () => {
    box.write('samples.csv', 'name,mem\nsmall,128MiB\nroomy,1GiB\n');
    job([
      `command: "${HOG.replace(/"/g, '\\"')}"`,
      'tasks:',
      '  table: samples.csv',
      'resources:',
      '  memory: "{{ mem }}"',
      'retry:',
      '  max: 1',
      '  on: [oom]',
      '  escalate:',
      '    memory: 3',
    ]);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    expect(box.query('SELECT idx, attempt, reason, memory FROM attempts WHERE idx >= 0 ORDER BY idx, attempt')).toEqual([
      { idx: 0, attempt: 1, reason: 'oom', memory: 128 * MIB },
      { idx: 0, attempt: 2, reason: 'ok', memory: 3 * 128 * MIB },
      { idx: 1, attempt: 1, reason: 'ok', memory: 1024 * MIB },
    ]);
  });

  it('keeps constant resources as they were: one value for every task, the same message for a bad one', async () => {
    job(['command: echo {{ item }}', 'tasks:', '  each: [1, 2]', 'resources:', '  memory: 2GB', '  cpus: 2', '  time: 1h30m']);
    const result = await box.run(['run', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    expect(recordedResources(box).map(({ cpus, memory, time_ms }) => ({ cpus, memory, time_ms }))).toEqual([
      { cpus: 2, memory: 2e9, time_ms: 90 * 60_000 },
      { cpus: 2, memory: 2e9, time_ms: 90 * 60_000 },
    ]);
    box.cleanup();
    box = new Sandbox();
    job(['command: echo {{ item }}', 'tasks:', '  each: [1]', 'resources:', '  memory: lots']);
    await refused([/^.*job\.yaml:5: resources\.memory: "lots" is not a size; write a size with a unit, e\.g\. 512MB or 4GB$/]);
  });
});

/** The memory an array's submission script asks for, in MiB: SLURM's --mem, Grid Engine's h_vmem (per slot; one cpu here). */
const MEMORY_DIRECTIVE = { slurm: /^#SBATCH --mem=(\d+)M$/m, sge: /^#\$ -l h_vmem=(\d+)M/m } as const;

for (const backend of ['slurm', 'sge'] as const) {
  describeOn(backend, `per-task resources on ${backend}`, () => {
    let box: Sandbox;
    beforeEach(() => (box = new Sandbox()));
    afterEach(() => box.cleanup());

    it(
      'puts tasks with different memory into different arrays, each asking for its own',
      async () => {
        box.write('samples.csv', 'name,mem\na,200M\nb,300M\nc,200M\n');
        box.write('job.yaml', 'command: echo {{ name }} > {{ out }}/v\ntasks:\n  table: samples.csv\nresources:\n  memory: "{{ mem }}"\n');
        const result = await box.run(['run', 'job.yaml'], { env: { FANOUT_POLL_MS: '300', FANOUT_BACKEND: backend }, timeoutMs: SLOW });
        expect(result.code, result.stderr).toBe(0);
        expect(runJobIds(box)).toHaveLength(2);
        const array = (n: number) => {
          const dir = box.path('.fanout', 'work', '1', 'arrays', String(n));
          const mem = MEMORY_DIRECTIVE[backend].exec(readFileSync(`${dir}/script.sh`, 'utf8'))?.[1];
          return { mem: Number(mem), elements: readFileSync(`${dir}/elements`, 'utf8').trim().split('\n').length };
        };
        expect([array(1), array(2)].sort((x, y) => x.mem - y.mem)).toEqual([
          { mem: 200, elements: 2 },
          { mem: 300, elements: 1 },
        ]);
        expect(recordedResources(box).map((t) => [t.name, t.memory])).toEqual([
          ['a', 200 * MIB],
          ['b', 300 * MIB],
          ['c', 200 * MIB],
        ]);
        for (const name of ['a', 'b', 'c']) expect(readFileSync(box.path('fanout-out', 'job', name, 'v'), 'utf8')).toBe(`${name}\n`);
      },
      SLOW,
    );
  });
}
