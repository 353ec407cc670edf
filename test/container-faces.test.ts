import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.js';
import { Fanout } from '../src/index.js';
import { startUiServer } from '../src/ui/ui-server.js';
import { finished, Sandbox, waitFor } from './harness.js';
import { describeOn } from './schedulers.js';
import { describeWithPodman, MARKER } from './containers.js';

/**
 * What users see of a job that runs in a container, with podman for real: `render` prints the
 * container command line (and it runs), `validate` names the field when the engine or the image
 * is missing, `backends` lists the engines, and `tasks --json`, the dashboard's API and the
 * dashboard itself show each task's image and its identity.
 */
const required = process.env.FANOUT_REQUIRE_SERVICES === '1';
const CHROMIUM = '/usr/bin/chromium';

describeWithPodman('faces', 'a job in a container, as users see it (podman)', (IMAGE) => {
  let box: Sandbox;
  let digest = '';

  beforeAll(() => {
    digest = execFileSync('podman', ['image', 'inspect', '--format', '{{.Id}}', IMAGE], { encoding: 'utf8' }).trim();
    box = new Sandbox('fanout container faces ');
    box.write("in put/it's a.txt", 'alpha\n');
    box.write('in put/b.txt', 'beta\n');
    box.write(
      'job.yaml',
      [
        'name: faces',
        `command: cat ${MARKER} {{ file }} > {{ out }}/seen.txt`,
        'tasks:',
        '  files: "in put/*.txt"',
        'container:',
        `  image: ${IMAGE}`,
        'resources: {memory: 100MB, time: 1m}',
        '',
      ].join('\n'),
    );
  }, 300_000);

  afterAll(() => box?.cleanup());

  it('render prints the container line a task runs, with the engine, image, identity and mounts; the output runs as a script', async () => {
    const result = await box.run(['render', 'job.yaml']);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(result.stdout).toContain(`# runs in a container: engine podman, image ${IMAGE}, identity ${digest}, pull missing`);
    expect(result.stdout).toContain(`# mounts: ${box.dir}`);
    expect(lines.filter((line) => line.startsWith('podman run --rm'))).toHaveLength(1);
    expect(result.stdout).toContain(`--volume '${box.dir}:${box.dir}'`);

    // Run as it is: the task's command runs in the image, its output lands in the staging folder.
    const script = box.write('render.sh', result.stdout);
    const ran = spawnSync('/bin/sh', [script], { cwd: box.dir, encoding: 'utf8', timeout: 120_000 });
    expect(ran.status, ran.stderr).toBe(0);
    const out = /^# \{\{ out \}\} = (.*)$/m.exec(result.stdout)![1]!;
    expect(readFileSync(join(out, 'seen.txt'), 'utf8')).toBe(`${IMAGE}\nbeta\n`);
    rmSync(box.path('.fanout'), { recursive: true, force: true });
    rmSync(box.path('fanout-out'), { recursive: true, force: true });
  }, 180_000);

  describeOn('slurm', 'render on a cluster backend', () => {
    it('prints the submission script, then the container line a node runs for the task, commented out', async () => {
      const result = await box.run(['render', 'job.yaml', '--backend', 'slurm', '--task', 'b']);
      expect(result.code, result.stderr).toBe(0);
      const [script, after] = result.stdout.split("\n# on the node, task b's attempt starts its container so:\n") as [string, string | undefined];
      expect(script).toMatch(/^#!/);
      expect(script).toContain('#SBATCH');
      expect(after).toContain(`# runs in a container: engine podman, image ${IMAGE}, identity ${digest}`);
      expect(after).toMatch(/^# {3}podman run --rm /m);
      // Nothing after the script runs: every line is a comment.
      expect(
        after!
          .trimEnd()
          .split('\n')
          .every((line) => line.startsWith('#')),
      ).toBe(true);
    }, 120_000);
  });

  it('validate says which engine and image it found, and refuses a missing image (pull: never) or engine naming the field, file and line', async () => {
    const ok = await box.run(['validate', 'job.yaml']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`in containers: podman, pull missing, image(s) present: ${IMAGE} (${digest})`);

    const job = readFileSync(box.path('job.yaml'), 'utf8');
    box.write('never.yaml', job.replace(`  image: ${IMAGE}`, '  image: localhost/fanout-test-container-faces-absent:1\n  pull: never'));
    const never = await box.run(['validate', 'never.yaml']);
    expect(never.code).toBe(2);
    expect(never.stderr).toContain('never.yaml:6: container.image: the image localhost/fanout-test-container-faces-absent:1 is not present for podman');
    expect(never.stderr).toContain('or set pull: missing');

    box.write('singularity.yaml', job.replace(`  image: ${IMAGE}`, `  image: ${IMAGE}\n  engine: singularity`));
    const absent = await box.run(['validate', 'singularity.yaml']);
    expect(absent.code).toBe(2);
    expect(absent.stderr).toContain("singularity.yaml:7: container.engine: singularity is not on this machine's PATH; install singularity, or choose another engine");

    // No engine at all on PATH, and none named: the container block is where it is refused.
    const none = await box.run(['validate', 'job.yaml'], { env: { PATH: box.path('empty') } });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/job\.yaml:\d+: container\.engine: no container engine \(podman, docker, apptainer, singularity\) is on this machine's PATH/);
  }, 120_000);

  it('backends lists each container engine with its version, and podman as able to run containers', async () => {
    const result = await box.run(['backends', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const reports = JSON.parse(result.stdout) as Array<{ name: string; kind: string; usable: boolean; detail: string; version?: string }>;
    const engines = reports.filter((r) => r.kind === 'container engine');
    expect(engines.map((r) => r.name)).toEqual(['podman', 'docker', 'apptainer', 'singularity']);
    const version = execFileSync('podman', ['--version'], { encoding: 'utf8' }).trim();
    expect(engines[0]).toMatchObject({ usable: true, version });
    expect(engines[0]!.detail).toContain('runs containers');
    for (const report of engines.filter((r) => !r.version)) expect(report).toMatchObject({ usable: false, detail: 'not found on PATH' });

    const text = await box.run(['backends']);
    expect(text.stdout).toMatch(/^podman +usable +podman version/m);
  }, 120_000);

  it("tasks --json, the dashboard's API and the task detail show each task's image and its digest", async () => {
    const run = await box.run(['run', 'job.yaml']);
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(box.path("fanout-out/faces/it's a/seen.txt"), 'utf8')).toBe(`${IMAGE}\nalpha\n`);

    const tasks = JSON.parse((await box.run(['tasks', '--json'])).stdout) as Array<{ name: string; image: string; imageDigest: string }>;
    expect(tasks.map((t) => [t.name, t.image, t.imageDigest])).toEqual([
      ['b', IMAGE, digest],
      ["it's a", IMAGE, digest],
    ]);
    expect(digest).toMatch(/^[0-9a-f]{64}$/);

    const engine = await Engine.open({ home: box.path('.fanout') });
    const server = await startUiServer({ engine, port: 0, eventPollMs: 100 });
    try {
      const base = `http://127.0.0.1:${server.port}/api/runs/1`;
      const page = await (await fetch(`${base}/tasks`)).json();
      expect(page.tasks.map(({ host, ...task }: { host: string }) => task)).toEqual(tasks);
      const attempts = await (await fetch(`${base}/tasks/b/attempts`)).json();
      expect(attempts).toMatchObject([{ attempt: 1, reason: 'ok', image: IMAGE, imageDigest: digest }]);
      expect(await (await fetch(`${base}/tasks/b`)).json()).toMatchObject({ image: IMAGE, imageDigest: digest });
    } finally {
      await server.close();
      await engine.close();
    }
    // The TypeScript API's results say the same.
    const fo = await Fanout.open({ home: box.path('.fanout') });
    try {
      const results = await (await fo.run(1)).gather();
      expect(results.map((r) => [r.name, r.image, r.imageDigest])).toEqual(tasks.map((t) => [t.name, t.image, t.imageDigest]));
    } finally {
      await fo.close();
    }
  }, 180_000);

  it.skipIf(!existsSync(CHROMIUM) && !required)(
    'the dashboard shows the image and its digest in the task detail',
    async () => {
      if (!existsSync(box.path('.fanout'))) expect((await box.run(['run', 'job.yaml'])).code).toBe(0);
      const ui = box.start(['ui', '--port', '0']);
      let printed = '';
      ui.stdout!.on('data', (chunk) => (printed += chunk));
      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      try {
        const url = await waitFor(() => /fanout ui: (http:\S+)/.exec(printed)?.[1], 20_000, 'fanout ui to print its URL');
        const page = await browser.newPage();
        await page.goto(url);
        await page.locator('#runs tr[data-run]').first().click();
        await page.locator('#tasks tr[data-task="b"]').click();
        await page.waitForFunction((wanted) => document.querySelector('#result-record')?.textContent?.includes(wanted), digest, { timeout: 20_000 });
        const record = await page.textContent('#result-record');
        expect(record).toContain(`image${IMAGE}`);
        expect(record).toContain(`image digest${digest}`);
      } finally {
        await browser.close();
        ui.kill('SIGTERM');
        await finished(ui);
      }
    },
    120_000,
  );
});
