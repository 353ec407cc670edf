import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AttemptLaunch } from '../backends/backend.js';
import { containerEngines, type ContainerEngineName } from '../job/job-schema.js';
import type { ContainerPlan } from '../job/job-spec.js';
import { CONTAINER_LIMITS_FILE } from '../runner/result-record.js';
import { containerCommandLine, containerRun, inContainer } from './container-command.js';
import { containerEngine, type ShellWord } from './container-engines.js';

/**
 * The command lines each engine gets, read back word by word: no engine is needed, so this holds
 * for apptainer and singularity too (not packaged here, so never run for real on this machine).
 */

// Spaces, both quotes, `$` and a backtick: a path the shell must get as one word, untouched.
const ROOT = mkdtempSync(join(tmpdir(), `fanout container "q" 'it's' $HOME \`x\` `));
afterAll(() => rmSync(ROOT, { recursive: true, force: true }));

const jobDir = join(ROOT, 'job dir');
const attemptDir = join(jobDir, '.fanout', 'work', '1', '0.1');
const stagingOut = join(ROOT, 'out dir', 'staging', 'sample 1');
const dataDir = join(ROOT, "data 'reads'");
const reads = join(dataDir, 's 1.fastq');
const extraMount = join(ROOT, 'ref db');
for (const folder of [attemptDir, stagingOut, dataDir, extraMount]) mkdirSync(folder, { recursive: true });
writeFileSync(reads, '@r\nACGT\n+\nIIII\n');
writeFileSync(join(jobDir, 'beside.txt'), 'x');

function plan(engine: ContainerEngineName, overrides: Partial<ContainerPlan> = {}): ContainerPlan {
  return { engine, image: 'localhost/tool:{{ version }}', mounts: [], options: [], pull: 'missing', digests: {}, ...overrides };
}

const launch: AttemptLaunch = {
  id: 1,
  attemptDir,
  cwd: attemptDir,
  stagingOut,
  finalOut: join(ROOT, 'out dir', 'sample 1'),
  cpus: 2,
  memory: 100_000_000,
  timeMs: 30_000,
  command: `wc -l '${reads.replace(/'/g, `'\\''`)}' > "$FANOUT_OUT/n it's.txt"`,
  env: { FANOUT_TASK: 'sample 1', FANOUT_OUT: stagingOut, FANOUT_FILE: reads },
};

const values = {
  version: '1.2',
  file: reads,
  beside: join(jobDir, 'beside.txt'),
  // A tool of the host's: its folder is the image's own, never mounted over it.
  tool: '/usr/bin/env',
  word: 'not a path',
};

/** What a POSIX shell makes of one word: a `{ shell }` word may expand to several, or none. */
function shellExpanded(word: ShellWord): string[] {
  if (typeof word === 'string') return [word];
  const out = execFileSync('/bin/sh', ['-c', `printf '%s\\n' ${word.shell}`], { encoding: 'utf8' });
  return out === '\n' || out === '' ? [] : out.replace(/\n$/, '').split('\n');
}

/** The command line as the shell splits it: the engine's program replaced by printf, one word a line. */
function wordsArrived(line: string, engine: string): string[] {
  expect(line.startsWith(`${engine} `)).toBe(true);
  const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${line.slice(engine.length + 1)}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

/** The value following each occurrence of `flag`. */
function flagValues(words: readonly string[], flag: string): string[] {
  return words.flatMap((word, i) => (word === flag ? [words[i + 1]!] : []));
}

describe.each(containerEngines)('%s command line', (engine) => {
  const containerPlan = plan(engine, { mounts: [`${extraMount}:/ref:ro`] });
  const run = containerRun(launch, containerPlan, values, jobDir);
  const line = containerCommandLine(containerPlan, run);
  const words = wordsArrived(line, engine);

  it('reaches the engine word for word through the shell, paths with spaces and quotes intact', () => {
    const expected = containerEngine(engine).runWords(run).flatMap(shellExpanded);
    expect(words).toEqual(expected);
    expect(words).toContain(run.image);
    expect(run.image).toBe('localhost/tool:1.2');
    if (containerEngine(engine).detached) {
      // The task's command is one word after the inner script and its $0; then where the inner script writes the limits it read.
      expect(words[words.indexOf('fanout-task') + 1]).toBe(launch.command);
      expect(words.at(-1)).toBe(join(attemptDir, CONTAINER_LIMITS_FILE));
    } else {
      // Run directly: the runner measures apptainer's processes itself.
      expect(words.slice(-3)).toEqual(['/bin/sh', '-c', launch.command]);
    }
  });

  it('mounts each folder once at the same path, and never a folder the image owns', () => {
    const flag = engine === 'podman' || engine === 'docker' ? '--volume' : '--bind';
    const mounts = flagValues(words, flag);
    // The attempt folder and the file beside the job file lie inside the job folder: one mount.
    expect(mounts).toEqual([`${dataDir}:${dataDir}`, `${jobDir}:${jobDir}`, `${stagingOut}:${stagingOut}`, `${extraMount}:/ref:ro`]);
    expect(mounts.some((mount) => mount.startsWith('/usr'))).toBe(false);
    expect(new Set(mounts).size).toBe(mounts.length);
  });
});

describe('podman and docker', () => {
  for (const engine of ['podman', 'docker'] as const) {
    it(`${engine}: removed on exit, its id in a file, the user's ids, limits, same-path workdir, env names, the entrypoint`, () => {
      const containerPlan = plan(engine);
      const run = containerRun(launch, containerPlan, values, jobDir);
      const words = wordsArrived(containerCommandLine(containerPlan, run), engine);
      expect(words.slice(0, 2)).toEqual(['run', '--rm']);
      expect(flagValues(words, '--cidfile')).toEqual([join(attemptDir, `.fanout.${engine}.cid`)]);
      expect(flagValues(words, '--label')).toEqual([`fanout.attempt=${attemptDir}`]);
      const ids = execFileSync('/bin/sh', ['-c', 'printf "%s:%s" "$(id -u)" "$(id -g)"'], { encoding: 'utf8' });
      expect(flagValues(words, '--user')).toEqual([ids]);
      expect(flagValues(words, '--memory')).toEqual(['100000000']);
      expect(flagValues(words, '--memory-swap')).toEqual(['100000000']);
      expect(flagValues(words, '--cpus')).toEqual(['2']);
      expect(flagValues(words, '--workdir')).toEqual([attemptDir]);
      // Names only: the values stay in the attempt's environment, out of the command line.
      expect(flagValues(words, '--env')).toEqual(['FANOUT_TASK', 'FANOUT_OUT', 'FANOUT_FILE']);
      expect(flagValues(words, '--entrypoint')).toEqual(['/bin/sh']);
      expect(words).toContain('--pull=missing');
      expect(words).toContain('--network=host');
      // The image comes right after the entrypoint's flags, then the inner script's arguments.
      expect(words[words.indexOf(run.image) + 1]).toBe('-c');
    });
  }

  it('podman gets an engine-side time limit past the runner, and keeps a rootless user its id', () => {
    const containerPlan = plan('podman');
    const words = containerEngine('podman').runWords(containerRun(launch, containerPlan, values, jobDir));
    const strings = words.filter((word): word is string => typeof word === 'string');
    expect(flagValues(strings, '--timeout')).toEqual([String(30 + 60)]);
    expect(words.some((word) => typeof word !== 'string' && word.shell.includes('--userns=keep-id'))).toBe(true);
  });

  it('docker has no --timeout and no --userns (it has neither flag)', () => {
    const containerPlan = plan('docker');
    const line = containerCommandLine(containerPlan, containerRun(launch, containerPlan, values, jobDir));
    expect(line).not.toContain('--timeout');
    expect(line).not.toContain('--userns');
  });

  it('pull: never is passed on, so no attempt pulls; no time limit gives no --timeout; options go before the image', () => {
    const containerPlan = plan('podman', { pull: 'never', options: ['--shm-size', '1g'] });
    const run = containerRun({ ...launch, timeMs: null, memory: null }, containerPlan, values, jobDir);
    const words = wordsArrived(containerCommandLine(containerPlan, run), 'podman');
    expect(words).toContain('--pull=never');
    expect(words).not.toContain('--timeout');
    expect(words).not.toContain('--memory');
    const image = words.indexOf(run.image);
    expect(words.slice(image - 2, image)).toEqual(['--shm-size', '1g']);
  });

  it('the attempt runs as a script that starts the container in the background and stops it through the engine', () => {
    const contained = inContainer(launch, plan('podman'), values, jobDir);
    expect(contained.limitsInside).toBe(true);
    expect(contained.command).toContain(`trap stop_container TERM INT HUP`);
    expect(contained.command).toMatch(/podman stop --time 5 /);
    execFileSync('/bin/sh', ['-n', '-c', contained.command]);
  });
});

describe('apptainer and singularity', () => {
  for (const engine of ['apptainer', 'singularity'] as const) {
    it(`${engine}: exec in the same working folder with binds, no memory or cpu flags (the runner limits its processes)`, () => {
      const containerPlan = plan(engine, { image: '/images/tool {{ version }}.sif', options: ['--cleanenv'] });
      const run = containerRun(launch, containerPlan, values, jobDir);
      const words = wordsArrived(containerCommandLine(containerPlan, run), engine);
      expect(words.slice(0, 3)).toEqual(['exec', '--pwd', attemptDir]);
      for (const flag of ['--memory', '--memory-swap', '--cpus', '--rm', '--cidfile', '--user', '--timeout', '--env']) expect(words).not.toContain(flag);
      const image = words.indexOf('/images/tool 1.2.sif');
      expect(words[image - 1]).toBe('--cleanenv');
      expect(words.slice(image + 1, image + 3)).toEqual(['/bin/sh', '-c']);
      // Not detached: the runner runs the line itself, limits it, and measures it.
      const contained = inContainer(launch, containerPlan, values, jobDir);
      expect(contained.limitsInside).toBeUndefined();
      expect(contained.command).toBe(containerCommandLine(containerPlan, run));
    });
  }
});
