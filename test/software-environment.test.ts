import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { finished, Sandbox } from './harness.js';
import { expectRefused } from './refused.js';
import { describeWithPodman } from './containers.js';
import { describeOn, type BackendUnderTest } from './schedulers.js';

/**
 * A task's software environment (`setup:` and `env:`) on every backend, with a real
 * environment-modules (Debian's `environment-modules`): the modulefiles in
 * test/fixtures/environment-modules put a tool on PATH that prints the module's version, so a
 * task's output proves `module load` ran in the command's own shell on the node.
 */

const SLOW = 240_000;
const MODULES_INIT = '/usr/share/modules/init/sh';
const MODULEFILES = resolve(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'environment-modules', 'modulefiles');

/** The lines that make `module` usable and the fixture's modulefiles visible, as a job file's YAML list entry. */
const MODULES_READY = `  - . ${MODULES_INIT} && module use {{ modulefiles }}`;

/**
 * Without environment-modules the suites skip with one line; `.ci/run` installs it, and with
 * FANOUT_REQUIRE_SCHEDULERS=1 (CI) a missing one fails instead.
 */
function describeWithModules(backend: BackendUnderTest, title: string, body: () => void): void {
  if (!existsSync(MODULES_INIT) && process.env.FANOUT_REQUIRE_SCHEDULERS !== '1') {
    console.log(`${title}: skipped (no ${MODULES_INIT}); install it with: apt-get install environment-modules`);
    describe.skip(title, body);
    return;
  }
  describeOn(backend, title, () => {
    beforeAll(() => {
      if (!existsSync(MODULES_INIT)) throw new Error(`environment-modules is required here but ${MODULES_INIT} is missing (apt-get install environment-modules)`);
    });
    body();
  });
}

for (const backend of ['local', 'slurm', 'sge'] as const) {
  describeWithModules(backend, `setup: and env: on ${backend}`, () => {
    let box: Sandbox;
    beforeEach(() => (box = new Sandbox()));
    afterEach(() => box?.cleanup());

    const run = (args: string[]) => box.run(args, { env: { FANOUT_POLL_MS: '300', FANOUT_BACKEND: backend }, timeoutMs: SLOW });
    const job = (lines: string[]) => box.write('job.yaml', `${lines.join('\n')}\n`);

    it(
      "loads a module in the command's shell for each task and for the gather, and passes env: values as written",
      async () => {
        job([
          'command: echo "{{ item }} $(mytool task) $TOOL_GREETING" > {{ out }}/v',
          'tasks:',
          '  each: [a, b]',
          'vars:',
          `  modulefiles: ${MODULEFILES}`,
          '  version: "1.0"',
          'env:',
          // Inserted as written: no quoting of the template value, no expansion of $HOME.
          `  TOOL_GREETING: "hello {{ version }}, it's $HOME"`,
          'setup:',
          MODULES_READY,
          '  - module load mytool/{{ version }}',
          'gather: mytool gather > all.txt && echo "$TOOL_GREETING" >> all.txt',
        ]);
        const result = await run(['run', 'job.yaml', '--json']);
        expect(result.code, result.stderr).toBe(0);
        expect(JSON.parse(result.stdout)).toMatchObject({ state: 'succeeded', counts: { succeeded: 2 } });
        expect(readFileSync(box.path('fanout-out/job/a/v'), 'utf8')).toBe("a mytool 1.0: task hello 1.0, it's $HOME\n");
        expect(readFileSync(box.path('fanout-out/job/b/v'), 'utf8')).toBe("b mytool 1.0: task hello 1.0, it's $HOME\n");
        expect(readFileSync(box.path('fanout-out/job/all.txt'), 'utf8')).toBe("mytool 1.0: gather\nhello 1.0, it's $HOME\n");
      },
      SLOW,
    );

    it(
      'ends an attempt whose setup line fails before its command runs, and says which line',
      async () => {
        job([
          'command: touch {{ jobdir }}/command-ran',
          'tasks:',
          '  each: [x]',
          'vars:',
          `  modulefiles: ${MODULEFILES}`,
          'setup:',
          MODULES_READY,
          '  - module load mytool/9.9',
        ]);
        const result = await run(['run', 'job.yaml']);
        expect(result.code).toBe(1);
        expect(box.query('SELECT state, reason, exit_code FROM tasks')).toEqual([{ state: 'failed', reason: 'exit', exit_code: 1 }]);
        expect(existsSync(box.path('command-ran'))).toBe(false);
        const stderr = (await run(['logs', '1', 'x', '--stderr'])).stdout;
        expect(stderr).toContain('fanout: setup line "module load mytool/9.9" exited 1; the command did not run');
      },
      SLOW,
    );
  });
}

describeWithModules('local', 'setup: and env: on pull workers', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box?.cleanup());

  it('a pull worker runs the setup lines and passes env: for the tasks and the gather', async () => {
    box.write(
      'job.yaml',
      [
        'backend: workers',
        'command: echo "{{ item }} $(mytool task) $TOOL_GREETING" > {{ out }}/v',
        'tasks:',
        '  each: [a, b]',
        'vars:',
        `  modulefiles: ${MODULEFILES}`,
        'env:',
        '  TOOL_GREETING: hello',
        'setup:',
        MODULES_READY,
        '  - module load mytool/2.0',
        'gather: mytool gather > all.txt && echo "$TOOL_GREETING" >> all.txt',
        '',
      ].join('\n'),
    );
    const queued = await box.run(['run', 'job.yaml', '--detach']);
    expect(queued.code, queued.stderr).toBe(0);
    const worked = await finished(box.start(['worker', '--until-empty', '--scratch', box.path('scratch')]));
    expect(worked.code, worked.stderr).toBe(0);
    expect(readFileSync(box.path('fanout-out/job/a/v'), 'utf8')).toBe('a mytool 2.0: task hello\n');
    expect(readFileSync(box.path('fanout-out/job/b/v'), 'utf8')).toBe('b mytool 2.0: task hello\n');
    expect(readFileSync(box.path('fanout-out/job/all.txt'), 'utf8')).toBe('mytool 2.0: gather\nhello\n');
  });
});

describeWithPodman('setup', 'setup: and env: in a container', (IMAGE) => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box?.cleanup());

  it(
    'runs the setup lines inside the image, with env: passed in, for the tasks and the gather',
    async () => {
      box.write(
        'job.yaml',
        [
          'command: echo "{{ item }} $GREETING $WHERE" > {{ out }}/v',
          'tasks:',
          '  each: [a, b]',
          'container:',
          `  image: ${IMAGE}`,
          '  engine: podman',
          'env:',
          '  GREETING: hello',
          'setup:',
          // This machine has /etc/os-release; the image (busybox alone) has none.
          '  - if [ -e /etc/os-release ]; then WHERE=outside; else WHERE=inside; fi',
          'gather: echo "$GREETING $WHERE" > all.txt',
          '',
        ].join('\n'),
      );
      const result = await box.run(['run', 'job.yaml'], { timeoutMs: SLOW });
      expect(result.code, result.stderr).toBe(0);
      expect(readFileSync(box.path('fanout-out/job/a/v'), 'utf8')).toBe('a hello inside\n');
      expect(readFileSync(box.path('fanout-out/job/b/v'), 'utf8')).toBe('b hello inside\n');
      expect(readFileSync(box.path('fanout-out/job/all.txt'), 'utf8')).toBe('hello inside\n');
    },
    SLOW,
  );
});

describeWithModules('local', 'setup: and env: in the cache key and in render', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box?.cleanup());

  const job = (version: string, greeting: string) =>
    box.write(
      'job.yaml',
      [
        'command: echo "$(mytool) $GREETING" > {{ out }}/v',
        'tasks:',
        '  each: [a, b]',
        'vars:',
        `  modulefiles: ${MODULEFILES}`,
        'env:',
        `  GREETING: ${greeting}`,
        'setup:',
        MODULES_READY,
        `  - module load mytool/${version}`,
        '',
      ].join('\n'),
    );
  async function counts(): Promise<Record<string, number>> {
    const result = await box.run(['run', 'job.yaml', '--json']);
    expect(result.code, result.stderr).toBe(0);
    return (JSON.parse(result.stdout) as { counts: Record<string, number> }).counts;
  }
  const output = () => readFileSync(box.path('fanout-out/job/a/v'), 'utf8');

  it('reruns tasks when setup: or env: changes, and skips them when neither did', async () => {
    job('1.0', 'hi');
    expect(await counts()).toMatchObject({ succeeded: 2 });
    expect(output()).toBe('mytool 1.0:  hi\n');
    expect(await counts()).toMatchObject({ skipped: 2 });

    job('2.0', 'hi');
    expect(await counts()).toMatchObject({ succeeded: 2 });
    expect(output()).toBe('mytool 2.0:  hi\n');

    job('2.0', 'hello');
    expect(await counts()).toMatchObject({ succeeded: 2 });
    expect(output()).toBe('mytool 2.0:  hello\n');
    expect(await counts()).toMatchObject({ skipped: 2 });
  });

  it('render prints the env: values and the setup lines before the command, as a script that runs', async () => {
    job('2.0', '"it\'s {{ name }}"');
    const result = await box.run(['render', 'job.yaml', '--task', 'b']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("export GREETING='it'\\''s b'\n");
    expect(result.stdout).toContain('\nmodule load mytool/2.0\n');
    const script = box.write('rendered.sh', result.stdout.replace(/> \S+\/v$/m, '> rendered.txt'));
    expect(execFileSync('/bin/sh', [script], { cwd: box.dir, encoding: 'utf8' })).toBe('');
    expect(readFileSync(box.path('rendered.txt'), 'utf8')).toBe("mytool 2.0:  it's b\n");
  });
});

describe('setup: and env: bad input', () => {
  let box: Sandbox;
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  /** Refused before anything runs (exit 2, no run), with one line naming file, line, field and fix. */
  async function refused(lines: string[], expected: RegExp[]) {
    box.write('job.yaml', `${lines.join('\n')}\n`);
    await expectRefused(box, ['run', 'job.yaml'], expected);
  }
  const base = ['command: echo {{ sample }}', 'tasks:', '  each: [{sample: s1}]'];

  it('an env name that is not a variable name', async () => {
    await refused([...base, 'env:', '  MY-TOOL: x'], [/job\.yaml:5: env\.MY-TOOL: "MY-TOOL" is not an environment variable name/, /letters, digits and _/]);
  });

  it("an env name of fanout's own", async () => {
    await refused([...base, 'env:', '  FANOUT_OUT: /tmp'], [/job\.yaml:5: env\.FANOUT_OUT: FANOUT_OUT is a name fanout sets itself/, /choose another name/]);
  });

  it('an env value naming an unknown variable', async () => {
    await refused(
      [...base, 'env:', '  SAMPLE: "{{ sampl }}"'],
      [/job\.yaml:5: env\.SAMPLE: \{\{ sampl \}\} names a variable that a task does not have/, /did you mean \{\{ sample \}\}/],
    );
  });

  it('a setup line naming an unknown variable, in a list', async () => {
    await refused([...base, 'setup:', '  - echo ok', '  - module load tool/{{ version }}'], [/job\.yaml:6: setup\[1\]: \{\{ version \}\} names a variable/]);
  });

  it('a setup line that is not a template', async () => {
    await refused([...base, 'setup: module load {{ tool | upper }}'], [/job\.yaml:4: setup: unknown filter "upper"/]);
  });

  it('a setup that is neither a line nor a list of lines', async () => {
    await refused([...base, 'setup:', '  load: samtools'], [/job\.yaml:\d: setup: must be a shell line or a list of shell lines/, /module load samtools/]);
  });

  it("a task's own value in setup: when the gather runs with it too", async () => {
    await refused(
      [...base, 'setup: cd {{ sample }}', 'gather: cat */x'],
      [/job\.yaml:4: setup: \{\{ sample \}\} is a task's own value, but the gather runs with the same setup: and env:/, /\$FANOUT_SAMPLE/],
    );
  });
});
