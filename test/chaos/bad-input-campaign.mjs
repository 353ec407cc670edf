// Bad-input campaign: broken homes and job files, as issue 13 lists them. Each case runs fanout
// commands and checks what a user should get: exit 2 (or 1 where a task failed), a message that
// names the path (or field) at fault, no stack trace, no run left `running`, and no `.fanout/`
// made by a command that only reads or checks. A check that fails counts as "bad input
// mishandled"; a stack trace counts under its own row.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { mayMount } from '../mounts.mjs';
import { Trial } from './trial.mjs';
import { trialSummary } from './tally.mjs';

/** Runs fanout as the unprivileged user `nobody`: root can write anywhere, whatever the modes. */
const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];
const COMMAND_TIMEOUT_MS = 120_000;
const SMALL_JOB = 'command: echo {{ item }} > {{ out }}/v\ntasks:\n  each: [a, b, c]\n';
const READ_ONLY_COMMANDS = [['validate', 'job.yaml'], ['status'], ['runs'], ['render', 'job.yaml'], ['schema'], ['tasks']];

/**
 * Each case: `setup(trial)` makes its folder, then `steps`: a command, the exit codes that are
 * right, what the message must name (a path or field; `trial.path` is applied to `{dir}`), and
 * whether `.fanout/` must not appear where it was not.
 */
const CASES = [
  {
    name: 'read-only-home-new',
    setup: (t) => t.write('job.yaml', SMALL_JOB),
    steps: [{ args: ['run', 'job.yaml'], asNobody: true, exit: [2], names: '{dir}' }],
  },
  {
    name: 'read-only-home-with-store',
    setup: async (t) => {
      t.write('job.yaml', SMALL_JOB);
      await t.run(['run', 'job.yaml'], { timeoutMs: COMMAND_TIMEOUT_MS, label: 'setup run' });
    },
    steps: [
      { args: ['run', 'job.yaml', '--fresh'], asNobody: true, exit: [2], names: '.fanout' },
      { args: ['status'], asNobody: true, exit: [0, 2] },
    ],
  },
  {
    name: 'full-disk-before-start',
    disk: '1m',
    setup: (t) => {
      t.write('disk/job.yaml', SMALL_JOB);
      fillDisk(t.path('disk', 'filler'));
    },
    cwd: 'disk',
    steps: [{ args: ['run', 'job.yaml'], exit: [2], names: '{dir}/disk', runNotLeftRunning: true }],
  },
  {
    name: 'full-disk-during-run',
    disk: '6m',
    setup: (t) => t.write('disk/job.yaml', 'command: head -c 1048576 /dev/zero > {{ out }}/data\ntasks:\n  each: [a, b, c, d, e, f, g, h, i, j]\nconcurrency: 1\n'),
    cwd: 'disk',
    steps: [{ args: ['run', 'job.yaml'], exit: [1, 2], names: 'full', runNotLeftRunning: true }],
  },
  {
    name: 'corrupt-db-half-truncated',
    setup: async (t) => {
      await storeWithRun(t);
      const db = t.path('.fanout', 'state.db');
      truncateSync(db, Math.floor(statSync(db).size / 2));
    },
    steps: [
      { args: ['status'], exit: [2], names: 'state.db' },
      { args: ['run', 'job.yaml'], exit: [2], names: 'state.db' },
    ],
  },
  {
    name: 'corrupt-db-random-bytes',
    setup: async (t) => {
      await storeWithRun(t);
      writeFileSync(t.path('.fanout', 'state.db'), randomBytes(64 * 1024));
    },
    steps: [
      { args: ['status'], exit: [2], names: 'state.db' },
      { args: ['run', 'job.yaml'], exit: [2], names: 'state.db' },
    ],
  },
  {
    // Attempt folders say runs were here: an empty state.db is a lost store, not a new one.
    name: 'empty-db-with-attempt-folders',
    setup: async (t) => {
      await storeWithRun(t);
      truncateSync(t.path('.fanout', 'state.db'), 0);
    },
    // Refusing, or going on after saying so: either way the message names state.db.
    steps: [{ args: ['run', 'job.yaml'], exit: [0, 2], names: 'state.db' }],
  },
  {
    name: 'symlink-loop-under-folders',
    setup: (t) => {
      mkdirSync(t.path('samples', 'real'), { recursive: true });
      symlinkSync('loop-b', t.path('samples', 'loop-a'));
      symlinkSync('loop-a', t.path('samples', 'loop-b'));
      t.write('job.yaml', 'command: ls {{ folder }}\ntasks:\n  folders: samples\n');
    },
    // Refused, or the loop skipped with a word naming it.
    steps: [
      { args: ['validate', 'job.yaml'], exit: [0, 2], names: 'loop-', readOnly: true },
      { args: ['run', 'job.yaml'], exit: [0, 2], names: 'loop-' },
    ],
  },
  {
    name: 'symlink-loop-as-folders',
    setup: (t) => {
      symlinkSync('samples', t.path('samples'));
      t.write('job.yaml', 'command: ls {{ folder }}\ntasks:\n  folders: samples\n');
    },
    steps: [{ args: ['validate', 'job.yaml'], exit: [2], names: 'samples', readOnly: true }],
  },
  {
    name: 'unreadable-table-file',
    setup: (t) => {
      t.write('samples.csv', 'name,x\na,1\n');
      chmodSync(t.path('samples.csv'), 0o000);
      t.write('job.yaml', 'command: echo {{ x }}\ntasks:\n  table: samples.csv\n');
      // nobody may write here, so a `.fanout/` made by validate would show.
      chmodSync(t.dir, 0o777);
    },
    steps: [{ args: ['validate', 'job.yaml'], asNobody: true, exit: [2], names: 'samples.csv', readOnly: true }],
  },
  {
    name: 'yaml-alias-bomb',
    setup: (t) => t.write('job.yaml', aliasBomb()),
    steps: [{ args: ['validate', 'job.yaml'], exit: [2], names: 'job.yaml', readOnly: true }],
  },
  {
    name: 'set-unknown-variable',
    setup: (t) => t.write('job.yaml', 'vars:\n  greeting: hi\ncommand: echo {{ greeting }} {{ item }}\ntasks:\n  each: [a]\n'),
    steps: [{ args: ['run', 'job.yaml', '--set', 'nosuch=1'], exit: [2], names: 'nosuch', readOnly: true }],
  },
  {
    name: 'retry-max-1e12',
    setup: (t) => t.write('job.yaml', 'command: echo {{ item }}\ntasks:\n  each: [a]\nretry:\n  max: 1e12\n'),
    steps: [{ args: ['validate', 'job.yaml'], exit: [2], names: 'retry', readOnly: true }],
  },
  {
    name: 'job-file-50mb',
    setup: (t) => writeBigJob(t.path('job.yaml'), 50 * 1000 * 1000),
    steps: [{ args: ['validate', 'job.yaml'], exit: [2], names: 'job.yaml', readOnly: true }],
  },
  ...READ_ONLY_COMMANDS.map((args) => ({
    name: `no-home-${args[0]}`,
    setup: (t) => t.write('job.yaml', SMALL_JOB),
    steps: [{ args, exit: [0, 2], readOnly: true }],
  })),
];

/**
 * @param {{ outRoot: string, tmpRoot: string, log: (s: string) => void, keep: boolean }} options
 */
export async function badInputCampaign(options) {
  const results = [];
  const mounting = mayMount();
  for (const spec of CASES) {
    if (spec.disk && !mounting) {
      // A full disk is real or not at all: where no tmpfs can be mounted, the case is not run.
      options.log(`bad-input ${spec.name}: skipped (this machine does not let the suite mount a tmpfs)`);
      continue;
    }
    const trial = new Trial(options.outRoot, 'bad-input', spec.name, options.tmpRoot);
    let mounted = false;
    try {
      if (spec.disk) {
        mkdirSync(trial.path('disk'));
        execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${spec.disk}`, 'tmpfs', trial.path('disk')]);
        mounted = true;
      }
      await spec.setup(trial);
      for (const step of spec.steps) await checkStep(trial, spec, step);
    } catch (error) {
      trial.harnessError(error);
    }
    await trial.reapLeftovers();
    if (mounted) execFileSync('umount', ['-l', trial.path('disk')]);
    results.push(trial.finish({ keep: options.keep }));
    options.log(`bad-input ${trial.name}: ${trialSummary(trial.counts)}${trial.notes.length ? ` (${trial.notes.join(' | ').slice(0, 400)})` : ''}`);
  }
  return results;
}

async function checkStep(trial, spec, step) {
  const cwd = spec.cwd ? trial.path(spec.cwd) : trial.dir;
  const hadHome = existsSync(join(cwd, '.fanout'));
  const outcome = await trial.run(step.args, { timeoutMs: COMMAND_TIMEOUT_MS, cwd, prefix: step.asNobody ? AS_NOBODY : [], label: step.args.join(' ') });
  const what = `\`fanout ${step.args.join(' ')}\`${step.asNobody ? ' (as nobody)' : ''}`;
  const wrong = [];
  if (outcome.hung) {
    trial.count('hungRuns');
    wrong.push(`did not end within ${COMMAND_TIMEOUT_MS / 1000} s`);
  } else if (!step.exit.includes(outcome.code)) {
    wrong.push(`exited ${outcome.code ?? outcome.signal}, not ${step.exit.join(' or ')}`);
  }
  const named = step.names?.replace('{dir}', trial.dir);
  if (named && !outcome.hung && !`${outcome.stderr}${outcome.stdout}`.includes(named)) wrong.push(`its message does not name ${named}`);
  if (step.readOnly && !hadHome && existsSync(join(cwd, '.fanout'))) wrong.push('it created .fanout/');
  if (step.runNotLeftRunning) {
    const status = await trial.json(['status'], { cwd });
    // A store that cannot be written cannot record the run's end either: `running` is then
    // acceptable only while `fanout status` says nothing drives it and how to resume it.
    if (status?.state === 'running' && !status.unattended?.resume) wrong.push('it left the run `running`, and status does not say it is unattended');
  }
  if (wrong.length) {
    trial.count('badInputMishandled');
    const said = outcome.stderr.trim().split('\n')[0] ?? '';
    trial.note(`${what}: ${wrong.join(', ')}${said ? ` — it said: ${said.slice(0, 200)}` : ''}`);
  }
}

/** A folder with a store, one finished run and its attempt folders. */
async function storeWithRun(trial) {
  trial.write('job.yaml', SMALL_JOB);
  const setup = await trial.run(['run', 'job.yaml'], { timeoutMs: COMMAND_TIMEOUT_MS, label: 'setup run' });
  if (setup.code !== 0) throw new Error(`the setup run failed: ${setup.stderr}`);
  // The store as a crash would leave it: no WAL beside it to make up for what is cut.
  for (const extra of ['state.db-wal', 'state.db-shm']) rmSync(trial.path('.fanout', extra), { force: true });
  if (!readdirSync(trial.path('.fanout')).includes('work')) throw new Error('the setup run left no attempt folders');
}

/** Writes zeros into `path` until the file system is full. */
function fillDisk(path) {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (error) {
    if (error.code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

/** The billion laughs: ten levels of ten aliases each, a few hundred bytes that expand to 10^9. */
function aliasBomb() {
  const lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
  for (let i = 1; i < 10; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]`);
  lines.push('command: echo {{ item }}', 'tasks:', '  each: *a9', '');
  return lines.join('\n');
}

/** A job file of about `bytes` bytes: one `each:` item per line. */
function writeBigJob(path, bytes) {
  const fd = openSync(path, 'w');
  writeSync(fd, 'command: echo {{ item }}\ntasks:\n  each:\n');
  let written = 0;
  for (let i = 0; written < bytes;) {
    const lines = [];
    for (let j = 0; j < 10000; j++, i++) lines.push(`    - s${String(i).padStart(9, '0')}`);
    const chunk = `${lines.join('\n')}\n`;
    writeSync(fd, chunk);
    written += chunk.length;
  }
  closeSync(fd);
}
