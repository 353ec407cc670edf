import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AttemptLaunch, Capacity, OrphanAttempt, PushBackend, ResultListener } from '../backends/backend.js';
import type { JobSpec, RetryPolicy } from '../job/job-spec.js';
import { parseTemplate } from '../job/template.js';
import { Alerts } from '../notify/alerts.js';
import { openStorage } from '../storage/open-storage.js';
import type { AttemptResult } from '../runner/launcher.js';
import type { NewTask, ProcessIdentity, RunRecord } from '../store/records.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/store.js';
import { Coordinator } from './coordinator.js';
import { HomeLayout } from './home-layout.js';

/**
 * The coordinator's scheduling and retry rules, with a real SQLite store and a scripted backend:
 * a stand-in that records what it is asked and reports what the test says, so that each rule
 * is seen without processes. Every real backend runs the same coordinator in the conformance
 * suites (test/conformance-*.test.ts).
 */
class ScriptedBackend implements PushBackend {
  readonly name = 'scripted';
  readonly dispatch = 'push';
  readonly objectStorage = false;
  readonly launched: AttemptLaunch[] = [];
  readonly cancelled: number[][] = [];
  readonly adopted: OrphanAttempt[] = [];
  /** Each `adopt` call: under which supervisor, which attempt folders. */
  readonly adoptions: Array<{ supervisor: ProcessIdentity | null; dirs: string[] }> = [];
  /** What `supervisor()` answers: the launcher attempts submitted now run under. */
  launcher: ProcessIdentity | null = null;
  private listener: ResultListener = () => {};

  constructor(private readonly size: Capacity) {}

  capacity(): Capacity {
    return this.size;
  }
  defaultConcurrency(): null {
    return null;
  }
  async start(onResult: ResultListener): Promise<null> {
    this.listener = onResult;
    return null;
  }
  supervisor(): ProcessIdentity | null {
    return this.launcher;
  }
  submit(launches: AttemptLaunch[]): void {
    this.launched.push(...launches);
  }
  cancel(ids: number[]): void {
    this.cancelled.push(ids);
  }
  adopt(orphans: OrphanAttempt[], supervisor: ProcessIdentity | null): void {
    this.adopted.push(...orphans);
    this.adoptions.push({ supervisor, dirs: orphans.map((orphan) => orphan.attemptDir) });
  }
  async close(): Promise<void> {}

  /** End the attempt launched under `id` (the launch id the coordinator gave it). */
  end(id: number, reason: AttemptResult['reason'] = 'ok', extra: Partial<AttemptResult> = {}): void {
    this.listener(id, { reason, exitCode: reason === 'ok' ? 0 : 1, signal: null, startedAt: 1, endedAt: 2, peakMemory: 10, cpuMs: 1, host: 'h', ...extra });
  }

  /** The launches of task `index`, oldest first. */
  of(index: number): AttemptLaunch[] {
    return this.launched.filter((launch) => launch.env.FANOUT_TASK === `t${index}`);
  }
}

const GB = 1e9;
const flush = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('Coordinator: scheduling and retry rules', () => {
  let home: string;
  let store: Store;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'fanout-coordinator-'));
    store = new SqliteStore(join(home, 'state.db'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(home, { recursive: true, force: true });
  });

  async function setUp(options: {
    tasks: number;
    capacity?: Partial<Capacity>;
    concurrency?: number | null;
    retry?: Partial<RetryPolicy>;
    memory?: number | null;
    cpus?: number;
  }) {
    const spec = {
      name: 'unit',
      file: join(home, 'job.yaml'),
      baseDir: home,
      command: 'run {{ name }}',
      commandField: 'command',
      workdir: null,
      outdir: join(home, 'out'),
      vars: {},
      gather: null,
      retry: { max: 2, on: ['oom', 'timeout', 'lost'], escalate: { memory: 2, time: 2 }, ...options.retry },
      resources: { cpus: options.cpus ?? 1, memory: options.memory ?? null, timeMs: null },
    } as unknown as JobSpec;
    const tasks: NewTask[] = Array.from({ length: options.tasks }, (_, index) => ({
      index,
      name: `t${index}`,
      vars: {},
      cacheKey: `k${index}`,
      state: 'pending',
      cpus: options.cpus ?? 1,
      memory: options.memory ?? null,
      timeMs: null,
    }));
    const created = await store.createRun(
      { job: 'unit', jobFile: spec.file, spec, backend: 'scripted', dispatch: 'push', planKey: 'p', tasks, coordinator: null },
      () => false,
    );
    if (!('run' in created)) throw new Error('not created');
    return { run: created.run, ...(await coordinate(created.run, options)) };
  }

  /** A coordinator of `run` over a scripted backend of this capacity, started. */
  async function coordinate(run: RunRecord, options: { capacity?: Partial<Capacity>; concurrency?: number | null } = {}) {
    const backend = new ScriptedBackend({ cpus: 4, memory: 8 * GB, shared: true, ...options.capacity });
    const layout = new HomeLayout(home, store.id);
    const coordinator = await Coordinator.open({
      store,
      backend,
      layout,
      run,
      command: parseTemplate(run.spec.command),
      capacity: backend.capacity(),
      concurrency: options.concurrency ?? null,
      alerts: new Alerts({ layout, storage: openStorage() }),
    });
    await backend.start((id, result) => coordinator.onResult(id, result));
    return { backend, coordinator };
  }

  it('launches only what fits in a shared capacity, and more as attempts end', async () => {
    const { backend, coordinator } = await setUp({ tasks: 5, cpus: 2, capacity: { cpus: 4 } });
    const done = coordinator.drive();
    await flush();
    expect(backend.launched.map((l) => l.env.FANOUT_TASK)).toEqual(['t0', 't1']);
    backend.end(backend.launched[0]!.id);
    await flush();
    expect(backend.launched.map((l) => l.env.FANOUT_TASK)).toEqual(['t0', 't1', 't2']);
    for (let i = 1; i < 5; i++) {
      await flush();
      backend.end(backend.of(i)[0]!.id);
    }
    await done;
    expect(coordinator.progress().counts).toMatchObject({ succeeded: 5, pending: 0, running: 0 });
  });

  it('counts memory too: a task waits until the memory it asks for is free', async () => {
    const { backend, coordinator } = await setUp({ tasks: 3, memory: 3 * GB, capacity: { cpus: 8, memory: 7 * GB } });
    void coordinator.drive();
    await flush();
    expect(backend.launched).toHaveLength(2);
    backend.end(backend.launched[0]!.id);
    await flush();
    expect(backend.launched).toHaveLength(3);
  });

  it('on a cluster (capacity not shared), launches up to the concurrency', async () => {
    const { backend, coordinator } = await setUp({ tasks: 10, capacity: { cpus: 1, shared: false }, concurrency: 3 });
    void coordinator.drive();
    await flush();
    expect(backend.launched).toHaveLength(3);
  });

  it('retries an oom with more memory (capped by the capacity), records it, and puts retries first', async () => {
    const { run, backend, coordinator } = await setUp({ tasks: 3, memory: 3 * GB, capacity: { cpus: 1, memory: 5 * GB } });
    const done = coordinator.drive();
    await flush();
    backend.end(backend.of(0)[0]!.id, 'oom');
    await flush();
    // The retry of t0 goes before t1, which has waited longer.
    expect(backend.launched.map((l) => [l.env.FANOUT_TASK, l.memory])).toEqual([
      ['t0', 3 * GB],
      ['t0', 5 * GB],
    ]);
    expect(await store.attempts(run.id, 0)).toMatchObject([
      { attempt: 1, state: 'done', reason: 'oom', memory: 3 * GB },
      { attempt: 2, state: 'running', memory: 5 * GB },
    ]);
    backend.end(backend.of(0)[1]!.id);
    for (const index of [1, 2]) {
      await flush();
      backend.end(backend.of(index)[0]!.id);
    }
    await done;
    expect(await store.getTask(run.id, 't0')).toMatchObject({ state: 'succeeded', attempts: 2, memory: 5 * GB });
  });

  it('fails a task for good once its retries are spent, and a reason the policy does not retry at once', async () => {
    const { run, backend, coordinator } = await setUp({ tasks: 2, retry: { max: 1 } });
    const done = coordinator.drive();
    await flush();
    backend.end(backend.of(0)[0]!.id, 'exit');
    backend.end(backend.of(1)[0]!.id, 'timeout');
    await flush();
    backend.end(backend.of(1)[1]!.id, 'timeout');
    await done;
    expect(await store.getTask(run.id, 't0')).toMatchObject({ state: 'failed', attempts: 1, reason: 'exit' });
    expect(await store.getTask(run.id, 't1')).toMatchObject({ state: 'failed', attempts: 2, reason: 'timeout' });
  });

  it('stops: cancels what waits, asks the backend to stop what runs, and retries nothing', async () => {
    const { run, backend, coordinator } = await setUp({ tasks: 6, capacity: { cpus: 2 } });
    const done = coordinator.drive();
    await flush();
    coordinator.stop();
    await flush();
    expect(backend.cancelled).toEqual([backend.launched.map((l) => l.id)]);
    backend.end(backend.launched[0]!.id, 'cancelled');
    backend.end(backend.launched[1]!.id, 'lost');
    await done;
    expect(await store.counts(run.id)).toMatchObject({ cancelled: 6, pending: 0, running: 0 });
  });

  it('adopts attempts a dead coordinator left running, and retries a lost one without spending its budget', async () => {
    const first = await setUp({ tasks: 2, retry: { max: 0 } });
    void first.coordinator.drive();
    await flush();
    expect(first.backend.launched).toHaveLength(2);
    // A second coordinator takes over the run (the first died with both attempts running).
    const { backend, coordinator } = await coordinate(first.run);
    await coordinator.recover();
    expect(backend.adopted.map((orphan) => orphan.attemptDir)).toEqual(first.backend.launched.map((l) => l.attemptDir));
    const done = coordinator.drive();
    backend.end(backend.adopted[0]!.id, 'ok');
    backend.end(backend.adopted[1]!.id, 'lost');
    await flush();
    expect(backend.of(1)).toHaveLength(1);
    backend.end(backend.of(1)[0]!.id);
    await done;
    expect(await store.getTask(first.run.id, 't1')).toMatchObject({ state: 'succeeded', attempts: 2, retryBase: 1 });
  });

  it('adopts each orphan under the launcher it was started under, when coordinators died one after another', async () => {
    const launcherA = { pid: 101, host: 'h', startedAt: 'a' };
    const launcherB = { pid: 102, host: 'h', startedAt: 'b' };
    const first = await setUp({ tasks: 2, concurrency: 1 });
    first.backend.launcher = launcherA;
    void first.coordinator.drive();
    await flush();
    // The first coordinator died with t0 running under launcher A; the second adopts it and
    // starts t1 under its own launcher B, then dies too.
    const second = await coordinate(first.run, { concurrency: 2 });
    second.backend.launcher = launcherB;
    await second.coordinator.recover();
    void second.coordinator.drive();
    await flush();
    expect(second.backend.of(1)).toHaveLength(1);
    expect((await store.runningAttempts(first.run.id)).map((a) => [a.index, a.launcher])).toEqual([
      [0, launcherA],
      [1, launcherB],
    ]);
    const third = await coordinate(first.run);
    await third.coordinator.recover();
    expect(third.backend.adoptions).toEqual([
      { supervisor: launcherA, dirs: [first.backend.of(0)[0]!.attemptDir] },
      { supervisor: launcherB, dirs: [second.backend.of(1)[0]!.attemptDir] },
    ]);
  });
});
