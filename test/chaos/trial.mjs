// One trial of a chaos campaign: a temp folder, the fanout commands run in it (each spawned as a
// user would: `node bin/fanout.js ...`, in its own process group), their stderr kept to look for
// stack traces, and an env marker given to every process of the trial so that whatever it leaves
// running can be found in /proc afterwards and killed by pid.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'bin', 'fanout.js');
/** The name of the env variable every process of a trial carries. */
const MARKER = 'FANOUT_CHAOS_TRIAL';
/** A JavaScript stack frame, or fanout's own word for a bug. */
const STACK_TRACE = /^\s+at \S|internal error/im;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check()` is true (polled), or `timeoutMs` passed; says which. */
export async function waitUntil(check, timeoutMs, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

export class Trial {
  /**
   * @param {string} outRoot where trials keep their details (bench/out/chaos-...)
   * @param {string} campaign
   * @param {string} name what this trial does, e.g. `random-kill-3`
   * @param {string} tmpRoot where the trial's temp folder goes
   */
  constructor(outRoot, campaign, name, tmpRoot) {
    this.id = randomUUID();
    this.campaign = campaign;
    this.name = name;
    this.dir = join(tmpRoot, `fanout-chaos-${campaign}-${name}-${this.id.slice(0, 8)}`);
    mkdirSync(this.dir, { recursive: true });
    this.detailsFile = join(outRoot, campaign, `${name}.json`);
    /** Every fanout command of the trial: args, exit, and its stderr when it had a stack trace. */
    this.commands = [];
    this.notes = [];
    this.counts = {};
    this.extraEnv = {};
  }

  path(...parts) {
    return join(this.dir, ...parts);
  }

  write(name, text) {
    writeFileSync(this.path(name), text);
  }

  note(text) {
    this.notes.push(text);
  }

  /** The suite itself failed (a service would not start, a mount failed): the trial proves nothing. */
  harnessError(error) {
    this.count('harnessErrors');
    this.note(`harness error: ${error?.stack ?? error}`);
  }

  count(key, n = 1) {
    this.counts[key] = (this.counts[key] ?? 0) + n;
  }

  env(extra = {}) {
    return { ...process.env, ...this.extraEnv, ...extra, [MARKER]: this.id };
  }

  /**
   * Starts `fanout <args>` in its own process group. `prefix` runs it under another program
   * (setpriv, to be an unprivileged user). Returns the child and a promise of its outcome.
   */
  start(args, { cwd = this.dir, env = {}, prefix = [], label = args[0] } = {}) {
    const argv = [...prefix, process.execPath, CLI, ...args];
    const child = spawn(argv[0], argv.slice(1), { cwd, env: this.env(env), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const record = { label, args, pid: child.pid, started: new Date().toISOString() };
    this.commands.push(record);
    const done = new Promise((resolve) => {
      child.once('error', (error) => {
        stderr += String(error);
      });
      child.once('close', (code, signal) => {
        Object.assign(record, { code, signal });
        const trace = STACK_TRACE.test(stderr);
        if (trace) {
          record.stackTrace = true;
          this.count('stackTraces');
        }
        // What fanout said last is kept for diagnosis; the whole of it when it was a stack trace.
        record.stderr = trace ? stderr.slice(0, 8000) : stderr.trim().split('\n').slice(-3).join('\n');
        resolve({ code, signal, stdout, stderr });
      });
    });
    return { child, done, record };
  }

  /**
   * Runs `fanout <args>` to its end, or until `timeoutMs`: then its process group is killed and
   * the outcome says `hung` (the caller decides whether that counts as a hung run).
   */
  async run(args, { timeoutMs, ...options }) {
    const { child, done, record } = this.start(args, options);
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      record.hung = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    const outcome = await done;
    clearTimeout(timer);
    return { ...outcome, hung };
  }

  /** `fanout <args> --json` parsed, or null when it did not answer with JSON. */
  async json(args, options = {}) {
    const { stdout, code, hung } = await this.run([...args, '--json'], { timeoutMs: 120_000, label: `${args[0]} --json`, ...options });
    if (hung) this.count('hungRuns');
    if (code !== 0) return null;
    try {
      return JSON.parse(stdout);
    } catch {
      return null;
    }
  }

  /** Pids of live processes that carry this trial's marker (a zombie has no environ to read). */
  markedPids() {
    const needle = `${MARKER}=${this.id}\0`;
    const pids = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        if (readFileSync(`/proc/${entry}/environ`, 'latin1').includes(needle)) pids.push(Number(entry));
      } catch {}
    }
    return pids;
  }

  /**
   * Counts the trial's processes still alive `graceMs` after it ended (launchers and tasks finish
   * their last writes; anything alive after that is left behind), kills them by pid, and says how
   * many there were.
   */
  async reapLeftovers(graceMs = 15_000) {
    await waitUntil(() => this.markedPids().length === 0, graceMs, 500);
    const left = this.markedPids();
    if (left.length > 0) {
      this.count('leftBehind', left.length);
      this.note(`left behind: ${left.map((pid) => `${pid} ${commandLine(pid)}`).join('; ')}`);
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    }
  }

  /** Writes the trial's details and removes its folder (kept with `keep`). */
  finish({ keep = false } = {}) {
    mkdirSync(dirname(this.detailsFile), { recursive: true });
    const details = { id: this.id, campaign: this.campaign, name: this.name, dir: this.dir, counts: this.counts, notes: this.notes, commands: this.commands };
    writeFileSync(this.detailsFile, `${JSON.stringify(details, null, 2)}\n`);
    const failed = Object.entries(this.counts).some(([, n]) => n > 0);
    if (!keep && !failed) rmSync(this.dir, { recursive: true, force: true });
    else if (!keep && existsSync(this.dir)) removeBigFiles(this.dir);
    return this.counts;
  }
}

/** SIGKILL (or another signal) to a whole process group; quiet when it is gone. */
export function killGroup(pid, signal = 'SIGKILL') {
  try {
    process.kill(-pid, signal);
  } catch {}
}

/** A signal to one process; quiet when it is gone. */
export function signal(pid, name) {
  try {
    process.kill(pid, name);
  } catch {}
}

function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 120);
  } catch {
    return '?';
  }
}

/** A failed trial's folder is kept for diagnosis, less the 1 MB outputs (a disk fills up fast). */
function removeBigFiles(dir) {
  const walk = (folder) => {
    let entries = [];
    try {
      entries = readdirSync(folder, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name === 'data') rmSync(path, { force: true });
    }
  };
  walk(dir);
}
