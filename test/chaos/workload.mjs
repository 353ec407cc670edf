// The work the local and worker campaigns give fanout, and how its outcome is judged. Each task
// appends "start <task> <pid>" to a ledger outside the outdir, then writes 1 MB to `data` in four
// steps with pauses between them, so a kill often lands mid-write. The ledger shows every start,
// so a task started again after the store said it succeeded is seen.
import { existsSync, readFileSync } from 'node:fs';

const OUTPUT_BYTES = 1024 * 1024;
const STEPS = 4;

export const taskNames = (count) => Array.from({ length: count }, (_, i) => `t${String(i).padStart(3, '0')}`);

/** The job file's text. `extra` is more top-level YAML (backend, workdir, outdir). */
export function jobYaml({ count, ledger, extra = '' }) {
  return [
    'name: chaos',
    'vars:',
    `  ledger: ${JSON.stringify(ledger)}`,
    'command: |',
    '  echo "start {{ name }} $$" >> {{ ledger }}',
    `  for step in ${Array.from({ length: STEPS }, (_, i) => i + 1).join(' ')}; do`,
    `    yes {{ name }} | head -c ${OUTPUT_BYTES / STEPS} >> {{ out }}/data`,
    '    sleep 0.05',
    '  done',
    'tasks:',
    `  each: [${taskNames(count).join(', ')}]`,
    // The gather also writes in steps, and truncates first: two gathers at once, or one cut off
    // and taken as done, leave a sizes.txt without one line per task.
    'gather: |',
    '  echo "gather-start $$" >> {{ ledger }}',
    '  for out in {{ outputs }}; do wc -c < "$out/data"; done > sizes.txt',
    extra,
    '',
  ].join('\n');
}

/** What a complete output of `name` holds. */
function expectedOutput(name) {
  const line = Buffer.from(`${name}\n`);
  const step = Buffer.alloc(OUTPUT_BYTES / STEPS);
  for (let at = 0; at < step.length; at += line.length) line.copy(step, at);
  return Buffer.concat(Array.from({ length: STEPS }, () => step));
}

/** The ledger's lines: `{ kind: 'start' | 'gather-start', name, pid }`. */
export function readLedger(path) {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kind, a, b] = line.split(' ');
      return kind === 'start' ? { kind, name: a, pid: Number(b) } : { kind, name: null, pid: Number(a) };
    });
}

/**
 * Keeps what the store said was committed, and when: `snapshot(succeededNames, ledgerLength)`
 * after each fault, then `reruns(ledger)` counts the starts of a task after the store had said it
 * succeeded.
 */
export class CommittedTracker {
  constructor() {
    /** task name -> ledger length when it was first seen committed */
    this.committedAt = new Map();
  }

  snapshot(succeededNames, ledgerLength) {
    for (const name of succeededNames) if (!this.committedAt.has(name)) this.committedAt.set(name, ledgerLength);
  }

  reruns(ledger) {
    const rerun = [];
    ledger.forEach((entry, index) => {
      const since = entry.kind === 'start' ? this.committedAt.get(entry.name) : undefined;
      if (since !== undefined && index >= since) rerun.push(entry.name);
    });
    return rerun;
  }
}

/**
 * Whether the store says a task's output is committed: it succeeded, or (in a run after the one
 * that ran it, e.g. when a run meant to be killed ended by itself and was run again) it was
 * skipped for the output an earlier run committed. Either way its output is checked in full.
 */
export function isCommitted(task) {
  return task?.state === 'succeeded' || task?.state === 'skipped';
}

/**
 * Judges the end of a run: `tasks` from `fanout tasks --json`, `readOutput(name)` the committed
 * output (a Buffer, or null when there is none), `readSizes()` the gather's sizes.txt (or null).
 * A task not succeeded, or succeeded without an output, is lost (these tasks never fail by
 * themselves: a `lost` or `infra` failure is fanout's); a succeeded task with an incomplete
 * output, or a gather output without one full line per task, is a half output taken as done.
 */
export async function judgeOutcome(trial, { names, tasks, runState, readOutput, readSizes }) {
  const byName = new Map((tasks ?? []).map((t) => [t.name, t]));
  const lost = [];
  const half = [];
  for (const name of names) {
    const task = byName.get(name);
    if (!isCommitted(task)) {
      lost.push(`${name}: ${task ? `${task.state} ${task.reason ?? ''}`.trim() : 'no such task'}`);
      continue;
    }
    const output = await readOutput(name);
    if (output === null) lost.push(`${name}: succeeded, no output`);
    else if (!output.equals(expectedOutput(name))) half.push(`${name}: ${output.length} bytes`);
  }
  if (runState === 'succeeded') {
    const sizes = await readSizes();
    const expected = names.map(() => String(OUTPUT_BYTES)).join('\n');
    if (sizes === null) lost.push('gather: sizes.txt missing after the run succeeded');
    else if (sizes.trim().split(/\s+/).join('\n') !== expected)
      half.push(`gather: sizes.txt has ${sizes.trim().split('\n').length} lines, not ${names.length} of ${OUTPUT_BYTES}`);
  } else {
    trial.note(`the run ended ${runState ?? 'unknown'}`);
  }
  if (lost.length) {
    trial.count('tasksLost', lost.length);
    trial.note(`lost: ${lost.slice(0, 20).join('; ')}${lost.length > 20 ? ` and ${lost.length - 20} more` : ''}`);
  }
  if (half.length) {
    trial.count('halfOutputs', half.length);
    trial.note(`half outputs: ${half.slice(0, 20).join('; ')}`);
  }
}
