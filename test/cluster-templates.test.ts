import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Sandbox } from './harness.js';
import { describeOn } from './schedulers.js';

/**
 * The submission script users see (`fanout render --backend`) is the one submitted; a template
 * folder replaces the built-in template; config files and profiles feed the directives.
 */
for (const backend of ['slurm', 'sge'] as const) {
  describeOn(backend, `submission scripts on ${backend}`, () => {
    let box: Sandbox;
    beforeEach(() => (box = new Sandbox()));
    afterEach(() => box?.cleanup());
    const env = () => ({ FANOUT_POLL_MS: '300', FANOUT_CONFIG: box.path('config.yaml'), FANOUT_SITE_CONFIG: box.path('site.yaml') });
    const prefix = backend === 'slurm' ? '#SBATCH' : '#$';

    it('render prints the directives the job and a profile ask for', async () => {
      box.write('site.yaml', backend === 'slurm' ? 'slurm:\n  extra: ["--comment=site"]\n' : 'sge:\n  extra: ["-ac site=1"]\n');
      box.write(
        'config.yaml',
        backend === 'slurm'
          ? 'profiles:\n  mine:\n    slurm:\n      partition: debug\n      extra: ["--comment=profile"]\n'
          : 'profiles:\n  mine:\n    sge:\n      queue: all.q\n      memory: [h_vmem]\n',
      );
      box.write(
        'job.yaml',
        'command: echo {{ item }}\ntasks:\n  each: [a, b, c]\nprofile: mine\nresources:\n  cpus: 2\n  memory: 1GiB\n  time: 90s\ncluster:\n  pack: 2\n',
      );
      const result = await box.run(['render', 'job.yaml', '--backend', backend], { env: env() });
      expect(result.code, result.stderr).toBe(0);
      const script = result.stdout;
      expect(script.startsWith('#!/bin/sh\n')).toBe(true);
      if (backend === 'slurm') {
        for (const line of ['--array=0-1', '--cpus-per-task=2', '--mem=1024M', '--time=4', '--partition=debug', '--comment=profile'])
          expect(script).toContain(`${prefix} ${line}`);
        expect(script).not.toContain('--comment=site');
      } else {
        for (const line of ['-t 1-2', '-pe threaded 2', '-l h_vmem=512M,h_rt=240', '-q all.q', '-ac site=1']) expect(script).toContain(`${prefix} ${line}`);
      }
      expect(script).toMatch(/exec \/bin\/sh .*fanout-element\.sh/);
    }, 60_000);

    it('a template folder replaces the built-in template, and the run uses it', async () => {
      box.write(
        `templates/${backend}.sh`,
        `#!/bin/sh\n{{ directives | raw }}\n# site template for {{ job_name }}\nexport SITE_MARK=from-template\n{{ run_element | raw }}\n`,
      );
      box.write('job.yaml', 'command: echo "$SITE_MARK" > {{ out }}/mark\ntasks:\n  each: [a]\ncluster:\n  templates: templates\n');
      const render = await box.run(['render', 'job.yaml', '--backend', backend], { env: env() });
      expect(render.stdout).toContain('# site template for fanout-job-1');
      const result = await box.run(['run', 'job.yaml', '--backend', backend], { env: env() });
      expect(result.code, result.stderr).toBe(0);
      expect(readFileSync(box.path('fanout-out/job/a/mark'), 'utf8')).toBe('from-template\n');
      expect(readFileSync(box.path('.fanout/work/1/arrays/1/script.sh'), 'utf8')).toContain('export SITE_MARK=from-template');
    }, 120_000);

    it('`fanout backends` finds it usable and reads its array limit from the scheduler', async () => {
      const result = await box.run(['backends', '--json'], { env: env() });
      expect(result.code, result.stderr).toBe(0);
      const report = (JSON.parse(result.stdout) as Array<{ name: string; usable: boolean; detail: string; settings: string[] }>).find((r) => r.name === backend)!;
      expect(report.usable).toBe(true);
      const limit =
        backend === 'slurm'
          ? /MaxArraySize\s*=\s*(\d+)/.exec(execFileSync('scontrol', ['show', 'config'], { encoding: 'utf8' }))![1]
          : /max_aj_tasks\s+(\d+)/.exec(execFileSync('qconf', ['-sconf'], { encoding: 'utf8' }))![1];
      expect(report.detail).toContain(`arrays up to ${limit}`);
      expect(report.settings.join('\n')).toContain(box.path('config.yaml'));
    }, 60_000);

    it('a template naming a variable fanout does not provide is refused', async () => {
      box.write(`templates/${backend}.sh`, '#!/bin/sh\n{{ directivs | raw }}\n{{ run_element | raw }}\n');
      box.write('job.yaml', 'command: echo\ntasks:\n  each: [a]\ncluster:\n  templates: templates\n');
      const result = await box.run(['run', 'job.yaml', '--backend', backend], { env: env() });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/names \{\{ directivs \}\}, which fanout does not provide; use only: directives/);
    }, 60_000);
  });
}
