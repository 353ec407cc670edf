// Worker campaign: 3 pull workers over PostgreSQL and S3 (s3rver) run the 1 MB tasks while the
// campaign takes things away — workers SIGKILLed (alone, or with their whole process group, as a
// lost node) and started again, PostgreSQL stopped at once and started 5 s later, S3 refusing
// connections for 10 s, a worker stopped (SIGSTOP) past its lease. A `fanout run` watches, as a
// user's would. Then the run must end by itself, everything committed once and complete.
import { randomUUID } from 'node:crypto';
import { CommittedTracker, isCommitted, judgeOutcome, jobYaml, readLedger, taskNames } from './workload.mjs';
import { killGroup, signal, sleep, Trial, waitUntil } from './trial.mjs';
import { startPostgres, startS3 } from './services.mjs';
import { trialSummary } from './tally.mjs';

/** One trial each; `no-fault` is the control: the same run untouched must count 0 everywhere. */
export const WORKER_FAULTS = ['no-fault', 'worker-kills', 'postgres-restart', 's3-outage', 'worker-sigstop'];
const WORKERS = 3;
// Long enough that a worker starved of CPU on a busy machine still renews it (a 5 s lease lost
// tasks of a run with no fault at all at a load of 20 on 2 cores), short enough to wait out.
const LEASE_S = 20;
/** How long a run may take after the last fault before it counts as hung. */
const END_TIMEOUT_MS = 10 * 60_000;
/** How long a run may stay unfinished once no worker is left alive to finish it. */
const NO_WORKER_TIMEOUT_MS = 2 * 60_000;

/**
 * @param {{ tasks: number, kills: number, outRoot: string, tmpRoot: string, log: (s: string) => void, keep: boolean }} options
 */
export async function workersCampaign(options) {
  const postgres = await startPostgres(options.tmpRoot);
  const s3 = await startS3(options.tmpRoot);
  const results = [];
  try {
    const bucket = await s3.bucket(`chaos-${randomUUID().slice(0, 8)}`);
    for (const fault of options.faults ?? WORKER_FAULTS) {
      const trial = new Trial(options.outRoot, 'workers', fault, options.tmpRoot);
      try {
        await workersTrial(trial, { ...options, fault, postgres, s3, bucket });
      } catch (error) {
        trial.harnessError(error);
      }
      await trial.reapLeftovers();
      results.push(trial.finish({ keep: options.keep }));
      options.log(`workers ${trial.name}: ${trialSummary(trial.counts)}${trial.notes.length ? ` (${trial.notes.join(' | ').slice(0, 400)})` : ''}`);
    }
  } finally {
    await s3.stop();
    await postgres.stop();
  }
  return results;
}

async function workersTrial(trial, { tasks, kills, fault, postgres, s3, bucket }) {
  const names = taskNames(tasks);
  const ledgerPath = trial.path('ledger');
  const prefix = `${trial.name}-${trial.id.slice(0, 8)}`;
  trial.extraEnv = { FANOUT_STORE: await postgres.database(`chaos_${trial.id.slice(0, 8)}`), ...s3.env };
  trial.write(
    'job.yaml',
    jobYaml({ count: tasks, ledger: ledgerPath, extra: `backend: workers\nworkdir: s3://${bucket}/${prefix}/work\noutdir: s3://${bucket}/${prefix}/out` }),
  );
  const tracker = new CommittedTracker();
  const starts = () => readLedger(ledgerPath).filter((e) => e.kind === 'start').length;
  const snapshot = async () => {
    const list = await trial.json(['tasks']);
    tracker.snapshot(
      (list ?? []).filter(isCommitted).map((t) => t.name),
      readLedger(ledgerPath).length,
    );
  };

  const watcher = trial.start(['run', 'job.yaml', '--json'], { label: 'run (watching)' });
  let watcherExited = false;
  void watcher.done.then(() => (watcherExited = true));
  const fleet = new Fleet(trial);
  for (let i = 0; i < WORKERS; i++) fleet.start(i);
  // A fault lands once the run is under way: some tasks started, and with them claims and uploads.
  const startedAtLeast = (n) => waitUntil(() => starts() >= n || watcherExited, END_TIMEOUT_MS, 200);

  if (fault === 'worker-kills') {
    for (let k = 1; k <= kills; k++) {
      await startedAtLeast(Math.floor((k * tasks) / (kills + 2)));
      const victim = fleet.randomLive();
      if (victim === null) break;
      // Every other kill takes the worker's whole process group (its launcher and tasks too), as
      // when its node is lost; the others only the worker, as the OOM killer might.
      fleet.kill(victim, k % 2 === 0);
      await snapshot();
      await sleep(1000);
      fleet.start(victim);
    }
  } else if (fault !== 'no-fault') {
    await startedAtLeast(Math.floor(tasks / 3));
    if (fault === 'postgres-restart') {
      await postgres.stopImmediately();
      await sleep(5000);
      await postgres.start();
    } else if (fault === 's3-outage') {
      await s3.outage();
      await sleep(10_000);
      await s3.restore();
    } else if (fault === 'worker-sigstop') {
      const victim = fleet.randomLive();
      if (victim !== null) {
        signal(fleet.pid(victim), 'SIGSTOP');
        await sleep(LEASE_S * 3 * 1000);
        signal(fleet.pid(victim), 'SIGCONT');
      }
    }
    await snapshot();
  }

  // The run must now end by itself.
  let runState = null;
  let noWorkerSince = null;
  const ended = await waitUntil(
    async () => {
      const status = await trial.json(['status']);
      runState = status?.state ?? runState;
      if (runState && runState !== 'running') return true;
      if (fleet.liveCount() > 0) noWorkerSince = null;
      else noWorkerSince ??= Date.now();
      return noWorkerSince !== null && Date.now() - noWorkerSince > NO_WORKER_TIMEOUT_MS;
    },
    END_TIMEOUT_MS,
    3000,
  );
  if (!ended || runState === 'running') {
    trial.count('hungRuns');
    trial.note(
      `the run did not end (state ${runState}; ${fleet.liveCount()} workers alive; workers that exited by themselves: ${fleet.exitedByThemselves.join(', ') || 'none'})`,
    );
  } else if (fleet.exitedByThemselves.length) {
    trial.note(`workers that exited by themselves: ${fleet.exitedByThemselves.join(', ')}`);
  }

  await fleet.stopAll();
  // The watching run ends when the run does.
  if (!(await waitUntil(() => watcherExited, 60_000, 500))) {
    trial.note('the watching fanout run did not exit after the run ended');
    killGroup(watcher.child.pid, 'SIGKILL');
  }
  await watcher.done;

  await snapshot();
  const reruns = tracker.reruns(readLedger(ledgerPath));
  if (reruns.length) {
    trial.count('committedRerun', reruns.length);
    trial.note(`committed tasks started again: ${reruns.join(' ')}`);
  }
  const committed = async (key) => (await s3.get(bucket, `${prefix}/out/${key}/.fanout-committed.json`)) !== null;
  await judgeOutcome(trial, {
    names,
    tasks: await trial.json(['tasks']),
    runState,
    readOutput: async (name) => ((await committed(name)) ? s3.get(bucket, `${prefix}/out/${name}/data`) : null),
    readSizes: async () => (await s3.get(bucket, `${prefix}/out/sizes.txt`))?.toString('utf8') ?? null,
  });
}

/** The trial's pull workers, by slot: started, killed and started again by the campaign. */
class Fleet {
  constructor(trial) {
    this.trial = trial;
    this.slots = [];
    this.exitedByThemselves = [];
  }

  start(slot) {
    const args = ['worker', '--lease', `${LEASE_S}s`, '--scratch', this.trial.path(`scratch-${slot}`)];
    const worker = { ...this.trial.start(args, { label: `worker ${slot}` }), alive: true, killed: false };
    void worker.done.then(({ code, signal: sig }) => {
      worker.alive = false;
      if (!worker.killed && !worker.stopping) this.exitedByThemselves.push(`worker ${slot} (exit ${code ?? sig})`);
    });
    this.slots[slot] = worker;
  }

  pid(slot) {
    return this.slots[slot].child.pid;
  }

  liveCount() {
    return this.slots.filter((w) => w?.alive).length;
  }

  randomLive() {
    const live = this.slots.map((w, slot) => (w?.alive ? slot : null)).filter((slot) => slot !== null);
    return live.length ? live[Math.floor(Math.random() * live.length)] : null;
  }

  kill(slot, wholeGroup) {
    const worker = this.slots[slot];
    worker.killed = true;
    if (wholeGroup) killGroup(worker.child.pid, 'SIGKILL');
    else signal(worker.child.pid, 'SIGKILL');
  }

  /** SIGTERM to every worker (finish what runs, stop), then wait for them, bounded. */
  async stopAll() {
    for (const worker of this.slots) {
      if (!worker?.alive) continue;
      worker.stopping = true;
      signal(worker.child.pid, 'SIGTERM');
    }
    if (!(await waitUntil(() => this.liveCount() === 0, 120_000, 500))) this.trial.note('a worker did not stop within 120 s of SIGTERM');
  }
}
