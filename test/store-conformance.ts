import { afterEach, describe, expect, it } from 'vitest';
import type { JobSpec } from '../src/job/job-spec.js';
import type { AttemptOutcome, NewTask, ProcessIdentity } from '../src/store/records.js';
import type { ResultChange } from '../src/store/run-ledger.js';
import type { Store } from '../src/store/store.js';
import type { AttemptKey, ClaimRequest } from '../src/store/work-queue.js';

/**
 * One suite for every Store: the whole contract, on a real store, fresh for each test. The
 * store's test file says how to open one and how to reach the same store again.
 */
export interface StoreUnderTest {
  /** A fresh, empty store for one test. */
  open(): Promise<Store>;
  /** Another instance, with its own connection, of the store `open` made last. */
  openAnother(): Promise<Store>;
  /** Make the store `open` made last look written by a newer fanout (one schema version ahead). */
  writeNewerSchema(): Promise<void>;
  /** Whether processes on other machines can reach it. */
  shared: boolean;
}

const ME: ProcessIdentity = { pid: 100, host: 'here', startedAt: 'a' };
const OTHER: ProcessIdentity = { pid: 200, host: 'there', startedAt: 'b' };
const alive = () => true;
const dead = () => false;
const GiB = 1024 ** 3;

function spec(name: string, gather: string | null = null): JobSpec {
  return { name, file: `/jobs/${name}.yaml`, workdir: null, gather, outdir: '/out', vars: { greeting: 'hé "quoted"' } } as unknown as JobSpec;
}

function tasks(count: number, shape: Partial<NewTask> = {}): NewTask[] {
  return Array.from({ length: count }, (_, index) => ({
    index,
    name: `t${index}`,
    vars: { n: String(index) },
    cacheKey: `key-${index}-${Math.random()}`,
    state: 'pending' as const,
    cpus: 1,
    memory: null,
    timeMs: null,
    ...shape,
  }));
}

function outcome(reason: AttemptOutcome['reason'] = 'ok', extra: Partial<AttemptOutcome> = {}): AttemptOutcome {
  return { reason, exitCode: reason === 'ok' ? 0 : 1, signal: null, startedAt: 1_000, endedAt: 1_500, peakMemory: 5 * GiB, cpuMs: 400, host: 'node1', ...extra };
}

function result(runId: number, index: number, attempt: number, reason: AttemptOutcome['reason'] = 'ok', cacheKey?: string): ResultChange {
  return {
    runId,
    index,
    attempt,
    result: outcome(reason),
    task: { state: reason === 'ok' ? 'succeeded' : 'failed', memory: null, timeMs: null, retryBase: 0, platformFailures: 0 },
    cache: reason === 'ok' && cacheKey ? { key: cacheKey, runId, index, attempt, out: `/out/t${index}` } : undefined,
  };
}

function claimRequest(workerId: string, free: Partial<ClaimRequest> = {}): ClaimRequest {
  return {
    workerId,
    cpus: 4,
    memory: 16 * GiB,
    limit: 100,
    leaseMs: 60_000,
    folders: {
      attemptDir: (run, index, attempt) => `/work/${run.spec.name}-${run.id}/${index}.${attempt}`,
      gatherDir: (run, attempt) => `/work/${run.spec.name}-${run.id}/gather.${attempt}`,
    },
    ...free,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function storeConformance(name: string, under: StoreUnderTest): void {
  describe(`${name} store`, () => {
    const opened: Store[] = [];
    const open = async () => {
      const store = await under.open();
      opened.push(store);
      return store;
    };
    const openAnother = async () => {
      const store = await under.openAnother();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
    });

    async function workersRun(store: Store, count: number, shape: Partial<NewTask> = {}, gather: string | null = null) {
      const created = await store.createRun(
        {
          job: `job-${Math.random()}`,
          jobFile: '/j.yaml',
          spec: spec('w', gather),
          backend: 'workers',
          dispatch: 'pull',
          planKey: 'p',
          tasks: tasks(count, shape),
          coordinator: null,
        },
        alive,
      );
      if (!('run' in created)) throw new Error('expected a run');
      return created.run;
    }

    describe('pages of tasks (the dashboard)', () => {
      /** A local run of 30 tasks: names `Sample-00`..`Sample-29`; every third failed, the rest of the first 20 succeeded. */
      async function measuredRun(store: Store) {
        const named = tasks(30).map((task) => ({ ...task, name: `Sample-${String(task.index).padStart(2, '0')}` }));
        const created = await store.createRun(
          { job: 'page', jobFile: '/j', spec: spec('page'), backend: 'local', dispatch: 'push', planKey: 'p', tasks: named, coordinator: ME },
          alive,
        );
        if (!('run' in created)) throw new Error('expected a run');
        const runId = created.run.id;
        const launches = Array.from({ length: 20 }, (_, index) => ({
          runId,
          index,
          attempt: 1,
          dir: `/w/${index}`,
          cpus: 1,
          memory: 4 * GiB,
          timeMs: null,
          launchedAt: 100 + index,
        }));
        await store.commit({ launches });
        await store.commit({
          results: launches.map(({ index }) => {
            const failed = index % 3 === 0;
            return {
              runId,
              index,
              attempt: 1,
              // Durations and peaks not in index order, so a sort by them is seen.
              result: outcome(failed ? 'exit' : 'ok', {
                startedAt: 1_000,
                endedAt: 1_000 + ((index * 7) % 20) * 100,
                peakMemory: ((index * 11) % 20) * 1000,
                host: `node${index % 2}`,
              }),
              task: { state: failed ? ('failed' as const) : ('succeeded' as const), memory: 4 * GiB, timeMs: null, retryBase: 0, platformFailures: 0 },
            };
          }),
        });
        return runId;
      }

      it('pages, filters by state and by name, and counts what matches', async () => {
        const store = await open();
        const runId = await measuredRun(store);
        const first = await store.pageTasks(runId, { offset: 0, limit: 10 });
        expect(first.total).toBe(30);
        expect(first.tasks.map((t) => t.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        expect(first.tasks[1]).toMatchObject({ name: 'Sample-01', state: 'succeeded', attempts: 1, host: 'node1', memory: 4 * GiB, peakMemory: 11_000 });
        const last = await store.pageTasks(runId, { offset: 25, limit: 10 });
        expect(last.tasks.map((t) => t.index)).toEqual([25, 26, 27, 28, 29]);
        expect(last.tasks[0]).toMatchObject({ state: 'pending', host: null });
        const failed = await store.pageTasks(runId, { state: 'failed', offset: 0, limit: 100 });
        expect(failed.total).toBe(7);
        expect(failed.tasks.map((t) => t.index)).toEqual([0, 3, 6, 9, 12, 15, 18]);
        const named = await store.pageTasks(runId, { nameContains: 'sample-1', offset: 0, limit: 3 });
        expect(named.total).toBe(10);
        expect(named.tasks.map((t) => t.name)).toEqual(['Sample-10', 'Sample-11', 'Sample-12']);
        const both = await store.pageTasks(runId, { state: 'failed', nameContains: 'E-1', offset: 0, limit: 100 });
        expect(both.tasks.map((t) => t.name)).toEqual(['Sample-12', 'Sample-15', 'Sample-18']);
        // Characters that mean something to LIKE are plain text here.
        expect((await store.pageTasks(runId, { nameContains: '%', offset: 0, limit: 5 })).total).toBe(0);
        expect((await store.pageTasks(runId, { nameContains: '_', offset: 0, limit: 5 })).total).toBe(0);
      });

      it('sorts by what tasks measured, unmeasured tasks last, pages never overlapping', async () => {
        const store = await open();
        const runId = await measuredRun(store);
        const all = await store.listTasks(runId);
        const measured = all.filter((t) => t.durationMs !== null);
        const byDuration = [...measured].sort((a, b) => a.durationMs! - b.durationMs! || a.index - b.index).map((t) => t.index);
        const pages = [];
        for (let offset = 0; offset < 30; offset += 7) pages.push(...(await store.pageTasks(runId, { sort: 'duration', offset, limit: 7 })).tasks.map((t) => t.index));
        expect(pages.slice(0, 20)).toEqual(byDuration);
        expect(pages.slice(20)).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
        const descending = (await store.pageTasks(runId, { sort: 'peakMemory', descending: true, offset: 0, limit: 30 })).tasks;
        const peaks = descending.map((t) => t.peakMemory);
        expect(peaks.slice(0, 20)).toEqual([...measured.map((t) => t.peakMemory)].sort((a, b) => b! - a!));
        expect(peaks.slice(20).every((p) => p === null)).toBe(true);
        const byName = (await store.pageTasks(runId, { sort: 'name', descending: true, offset: 0, limit: 2 })).tasks.map((t) => t.name);
        expect(byName).toEqual(['Sample-29', 'Sample-28']);
      });

      it("gives when each task attempt ran, not the gather's", async () => {
        const store = await open();
        const runId = await measuredRun(store);
        expect(await store.startGather(runId, { dir: () => '/w/g', launchedAt: 5_000 })).not.toBeNull();
        await store.commit({ launches: [{ runId, index: 25, attempt: 1, dir: '/w/25', cpus: 1, memory: null, timeMs: null, launchedAt: 4_000 }] });
        const spans = (await store.attemptSpans(runId)).sort((a, b) => a.launchedAt - b.launchedAt);
        expect(spans).toHaveLength(21);
        expect(spans[0]).toEqual({ index: 0, launchedAt: 100, startedAt: 1_000, endedAt: 1_000, reason: 'exit', memory: 4 * GiB, peakMemory: 0 });
        expect(spans[20]).toEqual({ index: 25, launchedAt: 4_000, startedAt: null, endedAt: null, reason: null, memory: null, peakMemory: null });
      });
    });

    describe('runs', () => {
      it('records a run with its tasks and reads it back', async () => {
        const store = await open();
        const created = await store.createRun(
          {
            job: 'align',
            jobFile: '/jobs/align.yaml',
            spec: spec('align'),
            backend: 'local',
            dispatch: 'push',
            planKey: 'plan-1',
            tasks: tasks(3, { memory: 3 * GiB, timeMs: 60_000, cpus: 2 }),
            coordinator: ME,
          },
          alive,
        );
        expect('run' in created).toBe(true);
        const run = 'run' in created ? created.run : null!;
        expect(run).toMatchObject({
          job: 'align',
          jobFile: '/jobs/align.yaml',
          backend: 'local',
          dispatch: 'push',
          state: 'running',
          endedAt: null,
          planKey: 'plan-1',
          coordinator: ME,
          launcher: null,
          gatherState: null,
        });
        expect(run.spec).toEqual(spec('align'));
        expect(Math.abs(run.createdAt - Date.now())).toBeLessThan(60_000);
        expect(await store.getRun(run.id)).toEqual(run);
        expect(await store.getRun(run.id + 1000)).toBeNull();
        const listed = await store.listTasks(run.id);
        expect(listed.map((t) => t.name)).toEqual(['t0', 't1', 't2']);
        expect(listed[1]).toEqual({
          index: 1,
          name: 't1',
          vars: { n: '1' },
          cacheKey: listed[1]!.cacheKey,
          state: 'pending',
          attempts: 0,
          retryBase: 0,
          platformFailures: 0,
          cpus: 2,
          memory: 3 * GiB,
          timeMs: 60_000,
          reason: null,
          exitCode: null,
          peakMemory: null,
          durationMs: null,
        });
      });

      it('lists runs newest first, by job, up to a limit', async () => {
        const store = await open();
        const ids: number[] = [];
        for (const job of ['a', 'b', 'a']) {
          const created = await store.createRun(
            { job, jobFile: '/j', spec: spec(job), backend: 'local', dispatch: 'push', planKey: 'p', tasks: [], coordinator: null },
            alive,
          );
          ids.push('run' in created ? created.run.id : -1);
        }
        expect((await store.listRuns()).map((r) => r.id)).toEqual([ids[2], ids[1], ids[0]]);
        expect((await store.listRuns({ job: 'a' })).map((r) => r.id)).toEqual([ids[2], ids[0]]);
        expect((await store.listRuns({ limit: 1 })).map((r) => r.id)).toEqual([ids[2]]);
        expect(await store.listRuns({ job: 'none' })).toEqual([]);
      });

      it('refuses a second run of a job while its live coordinator runs it', async () => {
        const store = await open();
        const first = await store.createRun(
          { job: 'j', jobFile: '/j', spec: spec('j'), backend: 'local', dispatch: 'push', planKey: 'p', tasks: tasks(2), coordinator: OTHER },
          alive,
        );
        expect('run' in first).toBe(true);
        expect(
          await store.createRun({ job: 'j', jobFile: '/j', spec: spec('j'), backend: 'local', dispatch: 'push', planKey: 'p', tasks: tasks(2), coordinator: ME }, alive),
        ).toEqual({ heldBy: OTHER });
        expect(
          await store.createRun({ job: 'j', jobFile: '/j', spec: spec('j'), backend: 'workers', dispatch: 'pull', planKey: 'p', tasks: [], coordinator: null }, alive),
        ).toEqual({ heldBy: OTHER });
        expect(await store.listRuns({ job: 'j' })).toHaveLength(1);
        // A dead coordinator, or the same process, does not hold it.
        expect(
          'run' in
            (await store.createRun({ job: 'j', jobFile: '/j', spec: spec('j'), backend: 'local', dispatch: 'push', planKey: 'p', tasks: [], coordinator: ME }, dead)),
        ).toBe(true);
        const onlyMeAlive = (holder: ProcessIdentity) => holder.pid === ME.pid;
        expect(
          'run' in
            (await store.createRun(
              { job: 'j', jobFile: '/j', spec: spec('j'), backend: 'local', dispatch: 'push', planKey: 'p', tasks: [], coordinator: ME },
              onlyMeAlive,
            )),
        ).toBe(true);
      });

      it('lets a run be claimed from a dead coordinator and released only by its holder', async () => {
        const store = await open();
        const created = await store.createRun(
          { job: 'j', jobFile: '/j', spec: spec('j'), backend: 'local', dispatch: 'push', planKey: 'p', tasks: [], coordinator: OTHER },
          alive,
        );
        const runId = 'run' in created ? created.run.id : -1;
        expect(await store.claimRun(runId, ME, alive)).toEqual(OTHER);
        expect((await store.getRun(runId))!.coordinator).toEqual(OTHER);
        expect(await store.claimRun(runId, ME, dead)).toBeNull();
        expect((await store.getRun(runId))!.coordinator).toEqual(ME);
        expect(await store.claimRun(runId, ME, alive)).toBeNull();
        await store.releaseRun(runId, OTHER);
        expect((await store.getRun(runId))!.coordinator).toEqual(ME);
        await store.releaseRun(runId, ME);
        expect((await store.getRun(runId))!.coordinator).toBeNull();
        expect(await store.claimRun(runId, OTHER, alive)).toBeNull();
      });

      it('records the launcher', async () => {
        const store = await open();
        const run = await workersRun(store, 0);
        await store.setLauncher(run.id, ME);
        expect((await store.getRun(run.id))!.launcher).toEqual(ME);
        await store.setLauncher(run.id, null);
        expect((await store.getRun(run.id))!.launcher).toBeNull();
      });

      it('says whether other machines can reach it', async () => {
        const store = await open();
        expect(store.shared).toBe(under.shared);
      });

      it('keeps its id across reopening, and every instance agrees on it', async () => {
        const store = await open();
        expect(store.id).toMatch(/^[0-9a-f]{8}$/);
        const again = await openAnother();
        expect(again.id).toBe(store.id);
      });

      it('refuses a store written by a newer fanout', async () => {
        await open();
        await under.writeNewerSchema();
        await expect(openAnother()).rejects.toThrow(/was written by a newer fanout \(schema (\d+), this fanout knows \d+\)/);
      });
    });

    describe('commit', () => {
      it('records launches, results, cache entries and task and run changes', async () => {
        const store = await open();
        const run = await workersRun(store, 3);
        const [t0, t1] = await store.listTasks(run.id);
        await store.commit({
          launches: [0, 1, 2].map((index) => ({ runId: run.id, index, attempt: 1, dir: `/w/${index}.1`, cpus: 1, memory: GiB, timeMs: 1000, launchedAt: 42 })),
        });
        expect((await store.counts(run.id)).running).toBe(3);
        expect(await store.runningAttempts(run.id)).toHaveLength(3);
        expect((await store.attempts(run.id, 1))[0]).toEqual({
          runId: run.id,
          index: 1,
          attempt: 1,
          state: 'running',
          dir: '/w/1.1',
          memory: GiB,
          timeMs: 1000,
          launchedAt: 42,
          reason: null,
          exitCode: null,
          signal: null,
          startedAt: null,
          endedAt: null,
          peakMemory: null,
          cpuMs: null,
          host: null,
          error: null,
          worker: null,
          launcher: null,
        });

        await store.commit({
          results: [
            result(run.id, 0, 1, 'ok', t0!.cacheKey),
            {
              ...result(run.id, 1, 1, 'oom'),
              result: outcome('oom', { signal: 'SIGKILL', error: 'killed' }),
              task: { state: 'pending', memory: 2 * GiB, timeMs: 2000, retryBase: 0, platformFailures: 2 },
            },
          ],
          run: { id: run.id, gatherState: 'skipped' },
        });
        const after0 = (await store.getTask(run.id, 't0'))!;
        expect(after0).toMatchObject({ state: 'succeeded', attempts: 1, reason: 'ok', exitCode: 0, peakMemory: 5 * GiB, durationMs: 500 });
        const after1 = (await store.getTask(run.id, 't1'))!;
        expect(after1).toMatchObject({ state: 'pending', memory: 2 * GiB, timeMs: 2000, reason: 'oom', exitCode: 1, platformFailures: 2 });
        expect((await store.attempts(run.id, 1))[0]).toMatchObject({
          state: 'done',
          reason: 'oom',
          signal: 'SIGKILL',
          error: 'killed',
          startedAt: 1000,
          endedAt: 1500,
          cpuMs: 400,
          host: 'node1',
        });
        expect(await store.getTask(run.id, 'nope')).toBeNull();
        expect((await store.lookupCache([t0!.cacheKey, t1!.cacheKey])).get(t0!.cacheKey)).toEqual({
          key: t0!.cacheKey,
          runId: run.id,
          index: 0,
          attempt: 1,
          out: '/out/t0',
        });
        expect((await store.lookupCache([t1!.cacheKey])).size).toBe(0);
        expect((await store.getRun(run.id))!.gatherState).toBe('skipped');
        expect(await store.counts(run.id)).toEqual({ pending: 1, running: 1, succeeded: 1, failed: 0, skipped: 0, cancelled: 0 });
        expect((await store.listTasks(run.id, { state: 'pending' })).map((t) => t.name)).toEqual(['t1']);

        // Retried tasks keep their attempts, which stop counting against the retry budget; their platform failures are forgiven.
        await store.commit({
          results: [{ ...result(run.id, 2, 1, 'lost'), task: { state: 'pending', memory: null, timeMs: null, retryBase: 1, platformFailures: 1 } }],
          taskStates: [
            { runId: run.id, index: 2, state: 'pending', resetRetries: true },
            { runId: run.id, index: 1, state: 'cancelled' },
          ],
          run: { id: run.id, state: 'cancelled', endedAt: 99 },
        });
        expect((await store.getTask(run.id, 't2'))!).toMatchObject({ state: 'pending', attempts: 1, retryBase: 1, platformFailures: 0 });
        expect((await store.getTask(run.id, 't1'))!).toMatchObject({ state: 'cancelled', retryBase: 0, platformFailures: 2 });
        expect(await store.getRun(run.id)).toMatchObject({ state: 'cancelled', endedAt: 99, gatherState: 'skipped' });
        await store.commit({ run: { id: run.id, state: 'running', endedAt: null, gatherState: null } });
        expect(await store.getRun(run.id)).toMatchObject({ state: 'running', endedAt: null, gatherState: null });
        expect(await store.runningAttempts(run.id)).toEqual([]);
      });

      it('keeps the launcher each attempt and gather attempt was started under, for a later coordinator to adopt it from', async () => {
        const store = await open();
        const run = await workersRun(store, 2);
        const launcherA = { pid: 11, host: 'h', startedAt: 'boot:1' };
        const launcherB = { pid: 12, host: 'h', startedAt: 'boot:2' };
        await store.commit({ launches: [{ runId: run.id, index: 0, attempt: 1, dir: '/w/0', cpus: 1, memory: null, timeMs: null, launchedAt: 1, launcher: launcherA }] });
        await store.commit({ launches: [{ runId: run.id, index: 1, attempt: 1, dir: '/w/1', cpus: 1, memory: null, timeMs: null, launchedAt: 2, launcher: launcherB }] });
        expect((await store.runningAttempts(run.id)).map((a) => a.launcher)).toEqual([launcherA, launcherB]);
        await store.startGather(run.id, { dir: () => '/g', launchedAt: 3, launcher: launcherB });
        expect((await store.gatherAttempts(run.id)).map((a) => a.launcher)).toEqual([launcherB]);
      });

      it('drops a result for an attempt that already ended, with its task change and cache entry', async () => {
        const store = await open();
        const run = await workersRun(store, 1);
        const [task] = await store.listTasks(run.id);
        await store.commit({ launches: [{ runId: run.id, index: 0, attempt: 1, dir: '/w', cpus: 1, memory: null, timeMs: null, launchedAt: 1 }] });
        await store.commit({ results: [{ ...result(run.id, 0, 1, 'lost'), task: { state: 'pending', memory: null, timeMs: null, retryBase: 0, platformFailures: 0 } }] });
        await store.commit({ results: [result(run.id, 0, 1, 'ok', task!.cacheKey)] });
        expect(await store.getTask(run.id, 't0')).toMatchObject({ state: 'pending', reason: 'lost' });
        expect((await store.attempts(run.id, 0))[0]).toMatchObject({ state: 'done', reason: 'lost' });
        expect((await store.lookupCache([task!.cacheKey])).size).toBe(0);
      });

      it('says which results applied, so one reported twice (here by two stores at once) is acted on once', async () => {
        const store = await open();
        const other = await openAnother();
        const run = await workersRun(store, 2);
        const [first, second] = await store.listTasks(run.id);
        await store.commit({ launches: [0, 1].map((index) => ({ runId: run.id, index, attempt: 1, dir: '/w', cpus: 1, memory: null, timeMs: null, launchedAt: 1 })) });
        const failedFirst = result(run.id, 0, 1, 'exit');
        const okSecond = result(run.id, 1, 1, 'ok', second!.cacheKey);
        const applied = await store.commit({ results: [failedFirst, okSecond], taskStates: [] });
        expect(applied.appliedResults).toEqual([failedFirst, okSecond]);
        const reportedAgain = await Promise.all([
          store.commit({ results: [result(run.id, 0, 1, 'lost')] }),
          other.commit({ results: [result(run.id, 0, 1, 'lost'), result(run.id, 1, 1, 'ok', first!.cacheKey)], run: { id: run.id, gatherState: null } }),
        ]);
        expect(reportedAgain.map((outcome) => outcome.appliedResults)).toEqual([[], []]);
        expect(await store.commit({ run: { id: run.id, gatherState: null } })).toEqual({ appliedResults: [] });
      });

      it('upserts cache entries and records the gather in attempts of its own', async () => {
        const store = await open();
        const run = await workersRun(store, 0);
        const started = await store.startGather(run.id, { dir: (attempt) => `/g/${attempt}`, launchedAt: 1 });
        expect(started).toEqual({
          runId: run.id,
          attempt: 1,
          state: 'running',
          dir: '/g/1',
          launchedAt: 1,
          reason: null,
          exitCode: null,
          signal: null,
          startedAt: null,
          endedAt: null,
          peakMemory: null,
          cpuMs: null,
          host: null,
          error: null,
          worker: null,
          launcher: null,
          cacheKey: null,
        });
        expect((await store.getRun(run.id))!.gatherState).toBe('running');
        expect(await store.endGather({ runId: run.id, attempt: 1, result: outcome('ok'), gatherState: 'succeeded', cacheKey: 'gather-key' })).toBe(true);
        expect(await store.gatherAttempts(run.id)).toMatchObject([{ attempt: 1, state: 'done', reason: 'ok', cacheKey: 'gather-key', host: 'node1', cpuMs: 400 }]);
        expect((await store.getRun(run.id))!.gatherState).toBe('succeeded');
        // The gather is no task: its attempts are not any task's, nor running task attempts, nor task cache.
        expect(await store.attempts(run.id, -1)).toEqual([]);
        expect(await store.runningAttempts(run.id)).toEqual([]);
        expect((await store.lookupCache(['gather-key'])).size).toBe(0);
        await store.commit({ results: [], launches: [], taskStates: [] });
        const other = await workersRun(store, 1);
        await store.commit({ launches: [{ runId: other.id, index: 0, attempt: 1, dir: '/w', cpus: 1, memory: null, timeMs: null, launchedAt: 1 }] });
        await store.commit({ results: [{ ...result(other.id, 0, 1, 'ok'), cache: { key: 'task-key', runId: other.id, index: 0, attempt: 1, out: '/out' } }] });
        await store.commit({ launches: [{ runId: other.id, index: 0, attempt: 2, dir: '/w', cpus: 1, memory: null, timeMs: null, launchedAt: 1 }] });
        await store.commit({ results: [{ ...result(other.id, 0, 2, 'ok'), cache: { key: 'task-key', runId: other.id, index: 0, attempt: 2, out: '/elsewhere' } }] });
        expect((await store.lookupCache(['task-key', 'missing'])).get('task-key')).toEqual({ key: 'task-key', runId: other.id, index: 0, attempt: 2, out: '/elsewhere' });
        expect((await store.lookupCache([])).size).toBe(0);
        expect(await store.gatherDone('gather-key')).toBe(true);
      });
    });

    describe('gather', () => {
      it('runs one gather of a run at a time, numbering its attempts', async () => {
        const store = await open();
        const run = await workersRun(store, 0, {}, 'gather');
        const first = await store.startGather(run.id, { dir: (attempt) => `/g/${attempt}`, launchedAt: 10 });
        expect(first).toMatchObject({ runId: run.id, attempt: 1, state: 'running', dir: '/g/1', launchedAt: 10, worker: null });
        expect(await store.startGather(run.id, { dir: (attempt) => `/g/${attempt}`, launchedAt: 11 })).toBeNull();
        // A gather queued by hand meanwhile is not handed to a worker while one runs.
        await store.commit({ run: { id: run.id, gatherState: 'pending' } });
        expect(await store.claim(claimRequest('w'))).toEqual([]);
        expect(await store.endGather({ runId: run.id, attempt: 1, result: outcome('exit'), gatherState: 'failed' })).toBe(true);
        expect((await store.getRun(run.id))!.gatherState).toBe('failed');
        const second = await store.startGather(run.id, { dir: (attempt) => `/g/${attempt}`, launchedAt: 12 });
        expect(second).toMatchObject({ attempt: 2, dir: '/g/2' });
        expect((await store.gatherAttempts(run.id)).map((g) => [g.attempt, g.state, g.reason])).toEqual([
          [1, 'done', 'exit'],
          [2, 'running', null],
        ]);
        // Another run's gather is its own.
        const other = await workersRun(store, 0, {}, 'gather');
        expect(await store.startGather(other.id, { dir: () => '/o', launchedAt: 13 })).toMatchObject({ runId: other.id, attempt: 1 });
      });

      it('starts one gather when several processes start it at once', async () => {
        const store = await open();
        const run = await workersRun(store, 0, {}, 'gather');
        const others = await Promise.all([openAnother(), openAnother(), openAnother()]);
        const started = await Promise.all([store, ...others, store].map((s, i) => s.startGather(run.id, { dir: (attempt) => `/g/${i}.${attempt}`, launchedAt: i })));
        expect(started.filter((g) => g !== null)).toHaveLength(1);
        expect(await store.gatherAttempts(run.id)).toHaveLength(1);
        expect((await store.gatherAttempts(run.id))[0]).toMatchObject({ attempt: 1, state: 'running' });
      });

      it("ends a gather attempt once, setting the run's gather state with it", async () => {
        const store = await open();
        const other = await openAnother();
        const run = await workersRun(store, 0, {}, 'gather');
        await store.startGather(run.id, { dir: () => '/g', launchedAt: 1 });
        const ends = await Promise.all([
          store.endGather({ runId: run.id, attempt: 1, result: outcome('ok'), gatherState: 'succeeded', cacheKey: 'k' }),
          other.endGather({ runId: run.id, attempt: 1, result: outcome('lost'), gatherState: 'pending' }),
        ]);
        expect(ends.filter(Boolean)).toHaveLength(1);
        const [ended] = await store.gatherAttempts(run.id);
        expect((await store.getRun(run.id))!.gatherState).toBe(ended!.reason === 'ok' ? 'succeeded' : 'pending');
        expect(await store.endGather({ runId: run.id, attempt: 1, result: outcome('exit'), gatherState: 'failed' })).toBe(false);
        expect(await store.endGather({ runId: run.id, attempt: 9, result: outcome('ok'), gatherState: 'succeeded' })).toBe(false);
        expect((await store.gatherAttempts(run.id))[0]).toEqual(ended);
        expect((await store.getRun(run.id))!.gatherState).not.toBe('failed');
      });

      it('knows a gather done by its cache key, from any run, only once it succeeded', async () => {
        const store = await open();
        const run = await workersRun(store, 0, {}, 'gather');
        expect(await store.gatherDone('g-key')).toBe(false);
        await store.startGather(run.id, { dir: () => '/g/1', launchedAt: 1 });
        expect(await store.gatherDone('g-key')).toBe(false);
        await store.endGather({ runId: run.id, attempt: 1, result: outcome('exit'), gatherState: 'failed', cacheKey: 'g-key' });
        expect(await store.gatherDone('g-key')).toBe(false);
        expect((await store.gatherAttempts(run.id))[0]!.cacheKey).toBeNull();
        await store.startGather(run.id, { dir: () => '/g/2', launchedAt: 2 });
        await store.endGather({ runId: run.id, attempt: 2, result: outcome('ok'), gatherState: 'succeeded', cacheKey: 'g-key' });
        expect(await store.gatherDone('g-key')).toBe(true);
        expect(await openAnother().then((s) => s.gatherDone('g-key'))).toBe(true);
        expect(await store.gatherDone('other-key')).toBe(false);
        // A task's cache entry under that key is no gather done.
        const tasksRun = await workersRun(store, 1);
        await store.commit({ launches: [{ runId: tasksRun.id, index: 0, attempt: 1, dir: '/w', cpus: 1, memory: null, timeMs: null, launchedAt: 1 }] });
        await store.commit({ results: [result(tasksRun.id, 0, 1, 'ok', 'task-only')] });
        expect(await store.gatherDone('task-only')).toBe(false);
      });

      it('holds a claimed gather under a lease: heartbeat extends it, expiry and retiring reap it', async () => {
        const store = await open();
        await store.registerWorker({ id: 'w', host: 'n', pid: 1, cpus: 4, memory: GiB, launchedBy: null });
        const run = await workersRun(store, 1, {}, 'gather');
        await store.claim(claimRequest('w'));
        await store.commit({ results: [result(run.id, 0, 1)] });
        expect(await store.settleRun(run.id, { hasGather: true })).toBe('gather-queued');
        const [claimed] = await store.claim(claimRequest('w', { leaseMs: 30 }));
        expect(claimed).toMatchObject({ kind: 'gather', attempt: 1 });
        const key: AttemptKey = { kind: 'gather', runId: run.id, attempt: 1 };
        expect((await store.listWorkers())[0]!.holding).toBe(1);
        expect(await store.heartbeat('w', [key], 60_000)).toEqual([]);
        await sleep(50);
        expect(await store.expiredAttempts(10)).toEqual({ tasks: [], gathers: [] });
        // Not this worker's, nor an attempt that runs: stop.
        expect(await store.heartbeat('other', [key], 60_000)).toEqual([key]);
        expect(await store.heartbeat('w', [{ kind: 'gather', runId: run.id, attempt: 2 }], 60_000)).toEqual([{ kind: 'gather', runId: run.id, attempt: 2 }]);
        // A task key never extends a gather's lease, nor the other way round.
        expect(await store.heartbeat('w', [{ kind: 'task', runId: run.id, index: 1, attempt: 1 }], 60_000)).toHaveLength(1);

        await store.heartbeat('w', [key], 1);
        await sleep(20);
        const expired = await store.expiredAttempts(10);
        expect(expired.tasks).toEqual([]);
        expect(expired.gathers).toMatchObject([{ runId: run.id, attempt: 1, state: 'running', worker: 'w', dir: `/work/w-${run.id}/gather.1` }]);
        expect((await store.expiredAttempts(0)).gathers).toEqual([]);
        await store.heartbeat('w', [key], 60_000);
        await store.retireWorker('w');
        expect((await store.expiredAttempts(10)).gathers).toHaveLength(1);
        expect(await store.endGather({ runId: run.id, attempt: 1, result: outcome('lost'), gatherState: 'pending' })).toBe(true);
        expect((await store.expiredAttempts(10)).gathers).toEqual([]);
        expect(await store.heartbeat('w', [key], 60_000)).toEqual([key]);

        // A cancelled run's gather must stop.
        const [again] = await store.claim(claimRequest('w2'));
        expect(again).toMatchObject({ kind: 'gather', attempt: 2 });
        const againKey: AttemptKey = { kind: 'gather', runId: run.id, attempt: 2 };
        expect(await store.heartbeat('w2', [againKey], 60_000)).toEqual([]);
        await store.commit({ run: { id: run.id, state: 'cancelled', endedAt: 1 } });
        expect(await store.heartbeat('w2', [againKey], 60_000)).toEqual([againKey]);
      });
    });

    describe('queue', () => {
      it('registers, lists and retires workers, with the attempts each holds', async () => {
        const store = await open();
        await store.registerWorker({ id: 'w1', host: 'n1', pid: 11, cpus: 4, memory: 8 * GiB, launchedBy: 'slurm job 1234' });
        await sleep(5);
        await store.registerWorker({ id: 'w2', host: 'n2', pid: 22, cpus: 2, memory: GiB, launchedBy: null });
        const run = await workersRun(store, 3);
        await store.claim(claimRequest('w1', { limit: 2 }));
        const listed = await store.listWorkers();
        expect(listed.map((w) => [w.id, w.holding])).toEqual([
          ['w2', 0],
          ['w1', 2],
        ]);
        expect(listed[1]).toMatchObject({ host: 'n1', pid: 11, cpus: 4, memory: 8 * GiB, launchedBy: 'slurm job 1234', state: 'running' });
        expect(Math.abs(listed[1]!.startedAt - Date.now())).toBeLessThan(60_000);
        expect(listed[1]!.heartbeatAt).toBeGreaterThanOrEqual(listed[1]!.startedAt);

        await store.retireWorker('w2');
        expect((await store.listWorkers()).map((w) => w.id)).toEqual(['w1']);
        expect((await store.listWorkers({ all: true })).map((w) => [w.id, w.state])).toEqual([
          ['w2', 'stopped'],
          ['w1', 'running'],
        ]);
        // A worker that retires still holding attempts leaves them to be reaped at once.
        await store.retireWorker('w1');
        expect((await store.expiredAttempts(10)).tasks.map((a) => [a.runId, a.index, a.worker])).toEqual([
          [run.id, 0, 'w1'],
          [run.id, 1, 'w1'],
        ]);
      });

      it('claims pending tasks in queue order while they fit the worker, up to its limit', async () => {
        const store = await open();
        const first = await workersRun(store, 4, { cpus: 2, memory: 3 * GiB });
        const second = await workersRun(store, 3, { cpus: 1, memory: null });
        // 5 cpus, 7 GiB: the first run's t0 and t1 (4 cpus, 6 GiB); nothing else of it fits; then one of the second's.
        const claimed = await store.claim(claimRequest('w', { cpus: 5, memory: 7 * GiB }));
        expect(claimed.map((c) => [c.runId, c.kind === 'task' ? c.task.name : 'gather', c.attempt])).toEqual([
          [first.id, 't0', 1],
          [first.id, 't1', 1],
          [second.id, 't0', 1],
        ]);
        const [c0] = claimed;
        expect(c0).toMatchObject({ kind: 'task', dir: `/work/w-${first.id}/0.1`, task: { state: 'running', attempts: 1, cpus: 2, memory: 3 * GiB } });
        expect((await store.attempts(first.id, 0))[0]).toMatchObject({ state: 'running', dir: `/work/w-${first.id}/0.1`, worker: 'w', memory: 3 * GiB });
        expect((await store.getTask(first.id, 't0'))!).toMatchObject({ state: 'running', attempts: 1 });

        expect((await store.claim(claimRequest('w', { limit: 1 }))).map((c) => c.kind === 'task' && c.task.name)).toEqual(['t2']);
        expect(await store.claim(claimRequest('w', { cpus: 2, memory: GiB, limit: 5 }))).toHaveLength(2);
        expect(await store.claim(claimRequest('w', { cpus: 0 }))).toEqual([]);
        expect(await store.claim(claimRequest('w', { limit: 0 }))).toEqual([]);
        expect(await store.claim(claimRequest('w', { cpus: 1, memory: 16 * GiB }))).toEqual([]);
        expect(await store.claim(claimRequest('w', { cpus: 8, memory: GiB }))).toEqual([]);
        expect((await store.claim(claimRequest('w'))).map((c) => c.kind === 'task' && c.task.name)).toEqual(['t3']);
        expect(await store.claim(claimRequest('w'))).toEqual([]);
      });

      it('claims ahead (more in all than the worker has free) only tasks the worker could run on its own', async () => {
        const store = await open();
        const run = await workersRun(store, 1, { cpus: 4, memory: null });
        const small = await workersRun(store, 6, { cpus: 1, memory: GiB });
        const ahead = { cpus: 8, memory: 8 * GiB, limit: 8, perTask: { cpus: 2, memory: 2 * GiB } };
        const claimed = await store.claim({ ...claimRequest('w'), ...ahead });
        expect(claimed.map((c) => c.runId)).toEqual(Array(6).fill(small.id));
        expect((await store.getTask(run.id, 't0'))!.state).toBe('pending');
      });

      it('claims a retried task as its next attempt', async () => {
        const store = await open();
        const run = await workersRun(store, 1);
        await store.claim(claimRequest('w'));
        await store.commit({
          results: [{ ...result(run.id, 0, 1, 'exit'), task: { state: 'pending', memory: 2 * GiB, timeMs: 5000, retryBase: 0, platformFailures: 0 } }],
        });
        const [again] = await store.claim(claimRequest('w'));
        expect(again).toMatchObject({ kind: 'task', attempt: 2, dir: `/work/w-${run.id}/0.2`, task: { attempts: 2, memory: 2 * GiB } });
        expect((await store.attempts(run.id, 0)).map((a) => [a.attempt, a.state, a.memory, a.timeMs])).toEqual([
          [1, 'done', null, null],
          [2, 'running', 2 * GiB, 5000],
        ]);
      });

      it('serves runs by their dispatch, whatever their backend is called', async () => {
        const store = await open();
        const pushed = await store.createRun(
          { job: 'a', jobFile: '/j', spec: spec('a'), backend: 'workers', dispatch: 'push', planKey: 'p', tasks: tasks(1), coordinator: ME },
          alive,
        );
        const pulled = await store.createRun(
          { job: 'b', jobFile: '/j', spec: spec('b'), backend: 'my-queue', dispatch: 'pull', planKey: 'p', tasks: tasks(1), coordinator: null },
          alive,
        );
        if (!('run' in pushed && 'run' in pulled)) throw new Error('expected runs');
        expect(pushed.run.dispatch).toBe('push');
        expect(await store.getRun(pulled.run.id)).toMatchObject({ backend: 'my-queue', dispatch: 'pull' });
        expect((await store.listRuns()).map((r) => r.dispatch)).toEqual(['pull', 'push']);
        expect((await store.claim(claimRequest('w'))).map((c) => c.runId)).toEqual([pulled.run.id]);
        await store.commit({ results: [result(pulled.run.id, 0, 1)] });
        expect(await store.settleRun(pulled.run.id, { hasGather: false })).toBe('succeeded');
      });

      it('claims only pending tasks of running runs of pull dispatch', async () => {
        const store = await open();
        await store.createRun(
          { job: 'local', jobFile: '/j', spec: spec('l'), backend: 'local', dispatch: 'push', planKey: 'p', tasks: tasks(2), coordinator: ME },
          alive,
        );
        const cancelled = await workersRun(store, 2);
        await store.commit({ run: { id: cancelled.id, state: 'cancelled', endedAt: 1 } });
        const served = await workersRun(store, 3);
        await store.commit({ taskStates: [{ runId: served.id, index: 0, state: 'cancelled' }] });
        const skipped = await store.createRun(
          { job: 's', jobFile: '/j', spec: spec('s'), backend: 'workers', dispatch: 'pull', planKey: 'p', tasks: tasks(1, { state: 'skipped' }), coordinator: null },
          alive,
        );
        expect('run' in skipped).toBe(true);
        const claimed = await store.claim(claimRequest('w'));
        expect(claimed.map((c) => [c.runId, c.kind === 'task' && c.task.index])).toEqual([
          [served.id, 1],
          [served.id, 2],
        ]);
      });

      it('claims a queued gather first, on one cpu', async () => {
        const store = await open();
        const run = await workersRun(store, 1, {}, 'cat {{ outputs }}');
        const later = await workersRun(store, 2);
        const [task] = await store.claim(claimRequest('w', { limit: 1 }));
        await store.commit({ results: [result(run.id, 0, task!.attempt)] });
        expect(await store.settleRun(run.id, { hasGather: true })).toBe('gather-queued');
        expect((await store.getRun(run.id))!.gatherState).toBe('pending');

        expect(await store.claim(claimRequest('w', { cpus: 0 }))).toEqual([]);
        const claimed = await store.claim(claimRequest('w', { cpus: 2 }));
        expect(claimed).toEqual([
          { kind: 'gather', runId: run.id, attempt: 1, dir: `/work/w-${run.id}/gather.1` },
          expect.objectContaining({ kind: 'task', runId: later.id, task: expect.objectContaining({ index: 0 }) }),
        ]);
        expect((await store.getRun(run.id))!.gatherState).toBe('running');
        expect(await store.gatherAttempts(run.id)).toMatchObject([{ attempt: 1, state: 'running', worker: 'w', dir: `/work/w-${run.id}/gather.1` }]);
        expect(await store.settleRun(run.id, { hasGather: true })).toBeNull();

        // A lost gather is queued again and claimed as its next attempt.
        expect(await store.endGather({ runId: run.id, attempt: 1, result: outcome('lost'), gatherState: 'pending' })).toBe(true);
        expect((await store.getRun(run.id))!.gatherState).toBe('pending');
        const [again] = await store.claim(claimRequest('w', { limit: 1 }));
        expect(again).toMatchObject({ kind: 'gather', runId: run.id, attempt: 2 });
      });

      it('gives every task to exactly one of many workers claiming at once', async () => {
        const store = await open();
        const run = await workersRun(store, 300);
        const workers = await Promise.all(Array.from({ length: 6 }, () => openAnother()));
        const claimedBy = new Map<number, string>();
        await Promise.all(
          workers.map(async (worker, w) => {
            for (;;) {
              const claimed = await worker.claim(claimRequest(`w${w}`, { cpus: 3, limit: 3 }));
              if (claimed.length === 0) return;
              for (const c of claimed) {
                if (c.kind !== 'task') continue;
                expect(claimedBy.get(c.task.index)).toBeUndefined();
                claimedBy.set(c.task.index, `w${w}`);
              }
              await worker.commit({ results: claimed.flatMap((c) => (c.kind === 'task' ? [result(c.runId, c.task.index, c.attempt)] : [])) });
            }
          }),
        );
        expect(claimedBy.size).toBe(300);
        expect(new Set(claimedBy.values()).size).toBeGreaterThan(1);
        expect((await store.counts(run.id)).succeeded).toBe(300);
        for (const index of [0, 150, 299]) expect(await store.attempts(run.id, index)).toHaveLength(1);
      });

      it('extends leases on heartbeat and says which held attempts must stop', async () => {
        const store = await open();
        await store.registerWorker({ id: 'w', host: 'n', pid: 1, cpus: 4, memory: GiB, launchedBy: null });
        const run = await workersRun(store, 3);
        const other = await workersRun(store, 1);
        const claimed = await store.claim(claimRequest('w', { leaseMs: 30 }));
        const keys = claimed.map((c): AttemptKey =>
          c.kind === 'task' ? { kind: 'task', runId: c.runId, index: c.task.index, attempt: c.attempt } : { kind: 'gather', runId: c.runId, attempt: c.attempt },
        );
        expect(keys).toHaveLength(4);
        const before = (await store.listWorkers())[0]!.heartbeatAt;
        await sleep(10);
        expect(await store.heartbeat('w', keys, 60_000)).toEqual([]);
        expect((await store.listWorkers())[0]!.heartbeatAt).toBeGreaterThan(before);
        await sleep(50);
        expect(await store.expiredAttempts(10)).toEqual({ tasks: [], gathers: [] });

        // One attempt reaped (its result recorded by someone else), one run cancelled, one not ours.
        await store.commit({ results: [{ ...result(run.id, 0, 1, 'lost'), task: { state: 'pending', memory: null, timeMs: null, retryBase: 0, platformFailures: 0 } }] });
        await store.commit({ run: { id: other.id, state: 'cancelled', endedAt: 5 } });
        const notOurs: AttemptKey = { kind: 'task', runId: run.id, index: 2, attempt: 7 };
        const mustStop = await store.heartbeat('w', [...keys, notOurs], 60_000);
        expect(mustStop).toEqual(expect.arrayContaining([keys[0], { kind: 'task', runId: other.id, index: 0, attempt: 1 }, notOurs]));
        expect(mustStop).toHaveLength(3);
        expect(await store.heartbeat('someone-else', [keys[1]!], 60_000)).toEqual([keys[1]]);
        expect(await store.heartbeat('w', [], 60_000)).toEqual([]);
      });

      it('lists attempts whose lease ran out, oldest first, up to a limit', async () => {
        const store = await open();
        const run = await workersRun(store, 4);
        await store.claim(claimRequest('a', { limit: 2, leaseMs: 1 }));
        await sleep(5);
        await store.claim(claimRequest('b', { limit: 1, leaseMs: 10 }));
        await store.claim(claimRequest('c', { limit: 1, leaseMs: 60_000 }));
        await sleep(40);
        const expired = (await store.expiredAttempts(10)).tasks;
        expect(expired.map((a) => [a.index, a.worker])).toEqual([
          [0, 'a'],
          [1, 'a'],
          [2, 'b'],
        ]);
        expect(expired[0]).toMatchObject({ runId: run.id, attempt: 1, state: 'running' });
        expect((await store.expiredAttempts(1)).tasks).toHaveLength(1);
        await store.commit({ results: [result(run.id, 0, 1, 'lost')] });
        expect((await store.expiredAttempts(10)).tasks.map((a) => a.index)).toEqual([1, 2]);
      });

      it('notes which claimed attempts started: only the claiming worker, only while they run', async () => {
        const store = await open();
        const run = await workersRun(store, 3);
        const claimed = await store.claim(claimRequest('w', { limit: 3 }));
        const key = (i: number) => ({ kind: 'task' as const, runId: run.id, index: i, attempt: 1 });
        expect(claimed).toHaveLength(3);
        expect((await store.attempts(run.id, 0))[0]!.startedAt).toBeNull();
        await store.started('w', [key(0), key(1)]);
        await store.started('someone-else', [key(2)]);
        expect((await store.attempts(run.id, 0))[0]!.startedAt).toEqual(expect.any(Number));
        expect((await store.attempts(run.id, 1))[0]!.startedAt).toEqual(expect.any(Number));
        expect((await store.attempts(run.id, 2))[0]!.startedAt).toBeNull();
        await store.started('w', []);
      });

      it('says while attempts of running pull runs are out under leases (a queue with nothing to claim is not empty then)', async () => {
        const store = await open();
        expect(await store.leasesOutstanding()).toBe(false);
        const run = await workersRun(store, 1);
        expect(await store.leasesOutstanding()).toBe(false);
        await store.claim(claimRequest('w'));
        expect(await store.leasesOutstanding()).toBe(true);
        await store.commit({ results: [result(run.id, 0, 1, 'ok')] });
        expect(await store.leasesOutstanding()).toBe(false);
      });

      it('lists a worker whose attempts were reaped as lost, until it heartbeats again', async () => {
        const store = await open();
        await store.registerWorker({ id: 'w', host: 'n', pid: 1, cpus: 4, memory: GiB, launchedBy: null });
        await store.registerWorker({ id: 'gone', host: 'n', pid: 2, cpus: 4, memory: GiB, launchedBy: null });
        await store.retireWorker('gone');
        await store.workersLost(['w', 'gone']);
        expect((await store.listWorkers()).map((w) => w.id)).toEqual([]);
        expect((await store.listWorkers({ all: true })).map((w) => [w.id, w.state])).toEqual([
          ['gone', 'stopped'],
          ['w', 'lost'],
        ]);
        await store.heartbeat('w', [], 60_000);
        expect((await store.listWorkers()).map((w) => [w.id, w.state])).toEqual([['w', 'running']]);
        await store.workersLost([]);
      });

      describe('settling a run', () => {
        it('waits while tasks are pending or running, then ends it by how they ended', async () => {
          const store = await open();
          const run = await workersRun(store, 2);
          expect(await store.settleRun(run.id, { hasGather: false })).toBeNull();
          const claimed = await store.claim(claimRequest('w'));
          expect(await store.settleRun(run.id, { hasGather: false })).toBeNull();
          await store.commit({ results: [result(run.id, 0, claimed[0]!.attempt)] });
          expect(await store.settleRun(run.id, { hasGather: false })).toBeNull();
          await store.commit({ results: [result(run.id, 1, claimed[1]!.attempt)] });
          expect(await store.settleRun(run.id, { hasGather: false })).toBe('succeeded');
          const ended = (await store.getRun(run.id))!;
          expect(ended.state).toBe('succeeded');
          expect(Math.abs(ended.endedAt! - Date.now())).toBeLessThan(60_000);
          expect(await store.settleRun(run.id, { hasGather: false })).toBeNull();
        });

        it('fails a run with a failed or cancelled task, without its gather', async () => {
          const store = await open();
          const failed = await workersRun(store, 2, {}, 'gather');
          await store.claim(claimRequest('w'));
          await store.commit({ results: [result(failed.id, 0, 1), result(failed.id, 1, 1, 'exit')] });
          expect(await store.settleRun(failed.id, { hasGather: true })).toBe('failed');
          expect((await store.getRun(failed.id))!).toMatchObject({ state: 'failed', gatherState: null });

          const cancelled = await workersRun(store, 1);
          await store.commit({ taskStates: [{ runId: cancelled.id, index: 0, state: 'cancelled' }] });
          expect(await store.settleRun(cancelled.id, { hasGather: false })).toBe('failed');
        });

        it('queues the gather once every task succeeded, then ends the run by it', async () => {
          const store = await open();
          const run = await store.createRun(
            {
              job: 'g',
              jobFile: '/j',
              spec: spec('g', 'gather'),
              backend: 'workers',
              dispatch: 'pull',
              planKey: 'p',
              tasks: [...tasks(1), ...tasks(2, { state: 'skipped' }).slice(1)],
              coordinator: null,
            },
            alive,
          );
          const runId = 'run' in run ? run.run.id : -1;
          await store.claim(claimRequest('w'));
          await store.commit({ results: [result(runId, 0, 1)] });
          expect(await store.settleRun(runId, { hasGather: true })).toBe('gather-queued');
          expect(await store.settleRun(runId, { hasGather: true })).toBeNull();
          const [gather] = await store.claim(claimRequest('w'));
          expect(gather!.kind).toBe('gather');
          expect(await store.settleRun(runId, { hasGather: true })).toBeNull();
          expect(await store.endGather({ runId, attempt: 1, result: outcome('exit'), gatherState: 'failed' })).toBe(true);
          expect(await store.settleRun(runId, { hasGather: true })).toBe('failed');

          // Gathered again by hand (`fanout gather`): this time it succeeds.
          await store.commit({ run: { id: runId, state: 'running', endedAt: null, gatherState: 'pending' } });
          const [again] = await store.claim(claimRequest('w'));
          expect(again).toMatchObject({ kind: 'gather', attempt: 2 });
          expect(await store.endGather({ runId, attempt: 2, result: outcome('ok'), gatherState: 'succeeded', cacheKey: 'g' })).toBe(true);
          expect(await store.settleRun(runId, { hasGather: true })).toBe('succeeded');
        });

        it('does nothing to a run that is not running', async () => {
          const store = await open();
          const run = await workersRun(store, 0);
          await store.commit({ run: { id: run.id, state: 'cancelled', endedAt: 3 } });
          expect(await store.settleRun(run.id, { hasGather: false })).toBeNull();
          expect((await store.getRun(run.id))!).toMatchObject({ state: 'cancelled', endedAt: 3 });
          expect(await store.settleRun(run.id + 1000, { hasGather: false })).toBeNull();
        });

        it('settles a run once when several processes try at once', async () => {
          const store = await open();
          const run = await workersRun(store, 1, {}, 'gather');
          await store.claim(claimRequest('w'));
          await store.commit({ results: [result(run.id, 0, 1)] });
          const others = await Promise.all([openAnother(), openAnother(), openAnother()]);
          const outcomes = await Promise.all([store, ...others].map((s) => s.settleRun(run.id, { hasGather: true })));
          expect(outcomes.filter((o) => o !== null)).toEqual(['gather-queued']);
        });
      });
    });
  });
}
