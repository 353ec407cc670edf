import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sandbox } from './harness.js';

const EXAMPLES = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'examples');

/** The README's examples, run as a user would run them, from another folder. */
describe('examples', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  async function runExample(name: string): Promise<string> {
    const result = await box.run(['run', join(EXAMPLES, name, 'job.yaml')]);
    expect(result.code, result.stderr).toBe(0);
    return box.path('fanout-out', name);
  }

  it('per-file: one task per file, the gather joins the counts', async () => {
    const out = await runExample('per-file');
    const rows = readFileSync(join(out, 'summary.tsv'), 'utf8').trim().split('\n');
    expect(rows[0]).toBe('file\tlines\twords');
    expect(rows.slice(1).map((r) => r.split('\t')[0])).toEqual(['alpha', 'beta', 'delta', 'epsilon', 'gamma']);
    const alphaLines = readFileSync(join(EXAMPLES, 'per-file/data/alpha.txt'), 'utf8').split('\n').length - 1;
    expect(rows[1]!.split('\t')[1]).toBe(String(alphaLines));
  });

  it('per-folder: one task per sample folder', async () => {
    const out = await runExample('per-folder');
    const rows = readFileSync(join(out, 'reads.tsv'), 'utf8').trim().split('\n').slice(1);
    expect(rows.map((r) => r.split('\t')[0])).toEqual(['S01_liver', 'S02_lung', 'S03_brain']);
    const lanes = execFileSync('sh', ['-c', `cat ${join(EXAMPLES, 'per-folder/samples/S02_lung')}/*.fastq | wc -l`])
      .toString()
      .trim();
    expect(rows[1]!.split('\t')[1]).toBe(String(Number(lanes) / 4));
  });

  it('fasta-chunks: the scattered and gathered result equals running the command on the whole file', async () => {
    const out = await runExample('fasta-chunks');
    const job = readFileSync(join(EXAMPLES, 'fasta-chunks/job.yaml'), 'utf8');
    const awkProgram = /awk '([\s\S]*?)' \{\{ chunk \}\}/.exec(job)![1]!;
    const serial = execFileSync('awk', [awkProgram, join(EXAMPLES, 'fasta-chunks/contigs.fa')]).toString();
    expect(readFileSync(join(out, 'gc.tsv'), 'utf8')).toBe(serial);
    expect(readFileSync(join(out, 'summary.txt'), 'utf8')).toBe('3000 sequences\n');
    const chunks = JSON.parse((await box.run(['tasks', '--json'])).stdout);
    expect(chunks).toHaveLength(8);
  });

  it('sample-sheet: one task per row, and the manifest lists every task', async () => {
    const out = await runExample('sample-sheet');
    expect(readFileSync(join(out, 'trea2/report.txt'), 'utf8')).toBe('treated replicate 2 with 2 threads\n');
    const manifest = JSON.parse(readFileSync(join(out, 'manifest-copy.json'), 'utf8'));
    expect(manifest.map((t: { name: string }) => t.name)).toEqual(['cont1', 'cont2', 'trea1', 'trea2']);
    expect(manifest[0]).toMatchObject({ index: 0, vars: { condition: 'control', replicate: '1' }, out: join(out, 'cont1') });
  });
});

/**
 * The container example: its image is built with the command its README gives (so the test
 * depends on no image left by anyone), then the job runs a tool the host does not have.
 * Skipped where podman cannot build or run the image, unless FANOUT_REQUIRE_SERVICES=1 (CI).
 */
const CONTAINER_EXAMPLE = join(EXAMPLES, 'container');
const IMAGE = /^\s*image: (\S+)$/m.exec(readFileSync(join(CONTAINER_EXAMPLE, 'job.yaml'), 'utf8'))![1]!;

/** Why the README's build command or a run of the built image fails here, or null when both work. */
function containerExampleUnbuildable(): string | null {
  const buildCommand = /^podman build .*$/m.exec(readFileSync(join(CONTAINER_EXAMPLE, 'README.md'), 'utf8'))![0];
  // From the repository's root, as the README says.
  const built = spawnSync('sh', ['-c', buildCommand], { cwd: resolve(EXAMPLES, '..'), encoding: 'utf8', timeout: 300_000 });
  if (built.status !== 0) return `${buildCommand}: ${(built.stderr || built.error?.message || '').trim().split('\n').slice(-2).join('; ')}`;
  const ran = spawnSync('podman', ['run', '--rm', IMAGE, 'true'], { encoding: 'utf8', timeout: 120_000 });
  if (ran.status !== 0) return `podman run --rm ${IMAGE} true: ${(ran.stderr || '').trim().split('\n').slice(-2).join('; ')}`;
  return null;
}

describe('examples in a container', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  it("container: the README builds the image, and each task runs the image's tool on its file", async (context) => {
    const why = containerExampleUnbuildable();
    if (why !== null) {
      if (process.env.FANOUT_REQUIRE_SERVICES === '1') throw new Error(`podman is required here (FANOUT_REQUIRE_SERVICES=1) but: ${why}`);
      process.stderr.write(`examples: container example skipped (${why}); set podman up (apt-get install podman runc busybox-static)\n`);
      context.skip();
    }
    // The proof that the tasks ran in the image: the tool exists only there.
    expect(spawnSync('sh', ['-c', 'command -v fasta-stats']).status).not.toBe(0);

    const result = await box.run(['run', join(CONTAINER_EXAMPLE, 'job.yaml')], { timeoutMs: 180_000 });
    expect(result.code, result.stderr).toBe(0);
    const rows = readFileSync(box.path('fanout-out', 'container', 'stats.tsv'), 'utf8')
      .trim()
      .split('\n');
    expect(rows[0]).toBe('file\trecords\tbases\tgc_percent');
    const files = ['sampleA.fa', 'sampleB.fa', 'sampleC.fa'];
    expect(rows.slice(1).map((row) => row.split('\t')[0])).toEqual(files);
    for (const [i, file] of files.entries()) {
      const records = readFileSync(join(CONTAINER_EXAMPLE, 'data', file), 'utf8')
        .split('\n')
        .filter((line) => line.startsWith('>')).length;
      expect(rows[i + 1]!.split('\t')[1]).toBe(String(records));
    }
  }, 300_000);
});

describe('gather', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  it('runs only when every task succeeded, and `fanout gather` runs it again without rerunning tasks', async () => {
    box.write(
      'job.yaml',
      [
        `command: echo {{ item }} >> ${box.path('ran.log')}; if [ {{ item }} = bad ] && [ ! -e ${box.path('fixed')} ]; then exit 1; fi; echo {{ item }} > {{ out }}/v`,
        'tasks:',
        '  each: [ok, bad]',
        `gather: echo gathered >> ${box.path('gathers.log')}; for d in {{ outputs }}; do cat "$d/v"; done > all.txt`,
        '',
      ].join('\n'),
    );
    const failed = await box.run(['run', 'job.yaml', '--json']);
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout).gather).toBeNull();
    box.write('fixed', '');
    expect((await box.run(['retry'])).code).toBe(0);
    expect(readFileSync(box.path('fanout-out/job/all.txt'), 'utf8')).toBe('ok\nbad\n');
    const again = await box.run(['gather']);
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(box.path('gathers.log'), 'utf8')).toBe('gathered\ngathered\n');
    // ok and bad ran side by side first, so only the counts are certain: bad twice, ok once.
    expect(readFileSync(box.path('ran.log'), 'utf8').trim().split('\n').sort()).toEqual(['bad', 'bad', 'ok']);
    expect((await box.run(['logs', 'gather'])).code).toBe(0);
  });

  it('a failing gather fails the run with exit code 1', async () => {
    box.write('job.yaml', 'command: "true"\ntasks:\n  each: [a]\ngather: exit 4\n');
    const result = await box.run(['run', 'job.yaml', '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ state: 'failed', gather: 'failed' });
  });
});

describe('the published JSON Schema', () => {
  it('is what `fanout schema` prints (regenerate schema/job.schema.json when the schema changes)', async () => {
    const box = new Sandbox();
    try {
      const printed = (await box.run(['schema'])).stdout;
      const checkedIn = readFileSync(resolve(EXAMPLES, '..', 'schema', 'job.schema.json'), 'utf8');
      expect(printed).toBe(checkedIn);
      expect(JSON.parse(printed).properties.tasks.properties).toHaveProperty('chunks');
    } finally {
      box.cleanup();
    }
  });
});
