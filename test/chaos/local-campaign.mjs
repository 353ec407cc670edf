// Local campaign: SIGKILL the coordinator (`fanout run`) at random moments of a run of 1 MB tasks
// — at start, at a random point of its progress, several times in quick succession, during the
// gather — and, in a variant, the whole process group it leads. Then resume until the run is
// done and judge it: nothing lost, nothing committed started again, no half output taken as
// done, no resume hung, nothing left running, no stack trace.
import { readFileSync, existsSync } from 'node:fs';
import { CommittedTracker, isCommitted, judgeOutcome, jobYaml, readLedger, taskNames } from './workload.mjs';
import { trialSummary } from './tally.mjs';
import { killGroup, signal, sleep, Trial, waitUntil } from './trial.mjs';

/** The moments a coordinator is killed at, one kind per trial, in turn. */
const MOMENTS = ['start', 'progress', 'succession', 'gather'];

/**
 * @param {{ trials: number, tasks: number, outRoot: string, tmpRoot: string, resumeTimeoutMs: number, log: (s: string) => void, keep: boolean }} options
 * @returns {Promise<{ trials: object[] }>} each trial's counts
 */
export async function localCampaign(options) {
  const results = [];
  for (let i = 0; i < options.trials; i++) {
    const moment = MOMENTS[i % MOMENTS.length];
    // Every other round of the four moments kills the whole process group instead.
    const group = Math.floor(i / MOMENTS.length) % 2 === 1;
    const trial = new Trial(options.outRoot, 'local', `${String(i).padStart(2, '0')}-${moment}${group ? '-group' : ''}`, options.tmpRoot);
    try {
      await localTrial(trial, { ...options, moment, group });
    } catch (error) {
      trial.harnessError(error);
    }
    await trial.reapLeftovers();
    results.push(trial.finish({ keep: options.keep }));
    options.log(`local ${trial.name}: ${trialSummary(trial.counts)}${trial.notes.length ? ` (${trial.notes.join(' | ').slice(0, 300)})` : ''}`);
  }
  return results;
}

async function localTrial(trial, { tasks, moment, group, resumeTimeoutMs }) {
  const names = taskNames(tasks);
  const ledgerPath = trial.path('ledger');
  trial.write('job.yaml', jobYaml({ count: tasks, ledger: ledgerPath }));
  const tracker = new CommittedTracker();
  const starts = () => readLedger(ledgerPath).filter((e) => e.kind === 'start').length;
  const gatherStarted = () => readLedger(ledgerPath).some((e) => e.kind === 'gather-start');

  // When to kill each coordinator of this trial: once `until(since)` holds (`since`: the tasks
  // started before it was spawned), after a random delay.
  const startedTotal = (k) => () => starts() >= k;
  const startedMore = (k) => (since) => starts() >= since + k;
  const kills = {
    // Node's start, planning and the first launches take a few seconds on a busy machine.
    start: [{ until: () => true, delayMs: random(0, 8000) }],
    progress: [{ until: startedTotal(Math.floor(random(1, tasks))), delayMs: random(0, 300) }],
    // Each coordinator gets to launch a few tasks (0 to 3) before it is killed.
    succession: Array.from({ length: 4 }, () => ({ until: startedMore(Math.floor(random(0, 4))), delayMs: random(0, 1000) })),
    gather: [{ until: gatherStarted, delayMs: random(0, 800) }],
  }[moment];

  for (const kill of kills) {
    const since = starts();
    const { child, done } = trial.start(['run', 'job.yaml'], { label: 'run (to be killed)' });
    let exited = false;
    void done.then(() => (exited = true));
    await waitUntil(() => exited || kill.until(since), resumeTimeoutMs, 50);
    if (!exited) {
      await sleep(kill.delayMs);
      if (group) killGroup(child.pid, 'SIGKILL');
      else signal(child.pid, 'SIGKILL');
    }
    const outcome = await done;
    if (exited && outcome.code !== null) trial.note(`a run meant to be killed ended by itself (exit ${outcome.code})`);
    await snapshot(trial, tracker, ledgerPath);
  }

  // Resume until the run is done: bounded, each resume within a generous time.
  let final = null;
  for (let resume = 0; resume < 3; resume++) {
    final = await trial.run(['run', 'job.yaml', '--json'], { timeoutMs: resumeTimeoutMs, label: 'resume' });
    if (final.hung) {
      trial.count('hungRuns');
      trial.note(`resume ${resume + 1} did not end within ${resumeTimeoutMs / 1000} s`);
      continue;
    }
    if (final.code === 0) break;
    trial.note(`resume ${resume + 1} exited ${final.code}: ${final.stderr.trim().split('\n').at(-1) ?? ''}`);
  }
  await snapshot(trial, tracker, ledgerPath);

  const reruns = tracker.reruns(readLedger(ledgerPath));
  if (reruns.length) {
    trial.count('committedRerun', reruns.length);
    trial.note(`committed tasks started again: ${reruns.join(' ')}`);
  }
  const status = await trial.json(['status']);
  const tasksJson = await trial.json(['tasks']);
  const outdir = trial.path('fanout-out', 'chaos');
  await judgeOutcome(trial, {
    names,
    tasks: tasksJson,
    runState: status?.state,
    readOutput: (name) => (existsSync(`${outdir}/${name}/data`) ? readFileSync(`${outdir}/${name}/data`) : null),
    readSizes: () => (existsSync(`${outdir}/sizes.txt`) ? readFileSync(`${outdir}/sizes.txt`, 'utf8') : null),
  });
}

/** Reads which tasks the store has committed (a store not made yet: none) and the ledger's length. */
async function snapshot(trial, tracker, ledgerPath) {
  const tasks = await trial.json(['tasks']);
  const ledgerLength = readLedger(ledgerPath).length;
  tracker.snapshot(
    (tasks ?? []).filter(isCommitted).map((t) => t.name),
    ledgerLength,
  );
}

const random = (low, high) => low + Math.random() * (high - low);
