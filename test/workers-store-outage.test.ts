import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDatabase, startThrowawayPostgres, type ThrowawayPostgres } from '../scripts/pg/throwaway-postgres.mjs';
import { finished, Sandbox, waitFor, waitForAsync } from './harness.js';
import { describeWithPostgres } from './services/postgres.js';

/**
 * Issue 13 item 1: PostgreSQL restarting under pull workers and a watching `fanout run`. The
 * suite's shared cluster must not be stopped (other suites use it), so this file starts its own.
 */
describeWithPostgres('a PostgreSQL restart under pull workers', () => {
  let cluster: ThrowawayPostgres;
  let storeUrl: string;
  let db: pg.Client | undefined;
  const box = new Sandbox();

  beforeAll(async () => {
    cluster = await startThrowawayPostgres({ fsync: false, maxConnections: 50 });
    storeUrl = await createDatabase(cluster.url, 'fanout_outage');
  });
  afterAll(async () => {
    await db?.end().catch(() => undefined);
    box.cleanup();
    await cluster?.stop();
  });

  /** What a process wrote on stderr so far, read at any time. */
  function stderrOf(child: ChildProcess): () => string {
    let text = '';
    child.stderr!.on('data', (chunk) => (text += chunk));
    return () => text;
  }

  async function rows<T>(sql: string): Promise<T[]> {
    if (!db) {
      db = new pg.Client({ connectionString: storeUrl });
      // The test's own connection dies with the server too; a new one is made after.
      db.on('error', () => (db = undefined));
      await db.connect();
    }
    return (await db.query(sql)).rows as T[];
  }

  it('workers and the watching `fanout run` ride out an immediate stop and start: every task succeeds, nothing is lost, they say so once each', async () => {
    box.write(
      'job.yaml',
      [
        'name: outage',
        'backend: workers',
        `workdir: ${box.path('work')}`,
        'command: sleep 2',
        'tasks:',
        `  each: [${Array.from({ length: 12 }, (_, i) => i).join(', ')}]`,
        '',
      ].join('\n'),
    );
    const env = { FANOUT_STORE: storeUrl };
    const watcher = box.start(['run', 'job.yaml'], { env });
    const said = [stderrOf(watcher)];
    await waitForAsync(async () => (await rows(`SELECT 1 FROM runs`)).length > 0, 60_000, 'the run to be recorded');
    const worker = () => box.start(['worker', '--until-empty', '--cpus', '2', '--lease', '4s', '--scratch', box.path('scratch')], { env });
    const workers = [worker(), worker()];
    said.push(...workers.map(stderrOf));
    await waitForAsync(async () => (await rows(`SELECT 1 FROM attempts WHERE reason = 'ok'`)).length >= 2, 90_000, 'two tasks done');
    await waitForAsync(async () => (await rows(`SELECT 1 FROM attempts WHERE state = 'running'`)).length > 0, 30_000, 'a running attempt');

    await cluster.crash();
    db = undefined;
    await waitFor(() => said.every((text) => /is unreachable/.test(text())), 60_000, 'every process to notice the outage').catch((error: Error) => {
      throw new Error(`${error.message}; they said:\n${said.map((text) => text()).join('\n---\n')}`);
    });
    // The tasks running at the stop end while it lasts: their reports wait for the store.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    await cluster.restart();

    const watched = await finished(watcher, 180_000);
    expect(watched.code, watched.stderr).toBe(0);
    const ended = await Promise.all(workers.map((w) => finished(w, 180_000)));
    for (const result of [watched, ...ended]) {
      expect(result.stderr).not.toMatch(/internal error|^\s+at /m);
      expect(result.stderr.match(/is unreachable/g), result.stderr).toHaveLength(1);
      expect(result.stderr.match(/is back after/g), result.stderr).toHaveLength(1);
    }
    for (const result of ended) expect(result.code, result.stderr).toBe(0);

    const tasks = await rows<{ state: string; n: string }>(`SELECT state, count(*) AS n FROM tasks GROUP BY state`);
    expect(tasks.map((t) => [t.state, Number(t.n)])).toEqual([['succeeded', 12]]);
    // No lease ran out because of the outage: every attempt ran once, to its end.
    expect(await rows(`SELECT idx, reason, error FROM attempts WHERE reason <> 'ok'`)).toEqual([]);
    expect(await rows(`SELECT state FROM runs`)).toEqual([{ state: 'succeeded' }]);
  }, 300_000);

  it('gives up after FANOUT_STORE_PATIENCE with one clear line and exit code 2', async () => {
    box.write('job.yaml', ['name: patience', 'backend: workers', `workdir: ${box.path('work')}`, 'command: sleep 2', 'tasks:', '  each: [a]', ''].join('\n'));
    if (cluster.serverPid() === null) await cluster.restart();
    const env = { FANOUT_STORE: storeUrl, FANOUT_STORE_PATIENCE: '3s' };
    expect((await box.run(['run', 'job.yaml', '--detach'], { env })).code).toBe(0);
    const worker = box.start(['worker', '--lease', '4s', '--scratch', box.path('scratch')], { env });
    await waitForAsync(async () => (await rows(`SELECT 1 FROM attempts a JOIN runs r ON r.id = a.run_id WHERE r.job = 'patience'`)).length > 0, 60_000, 'a claim');
    await cluster.crash();
    db = undefined;
    const gaveUp = await finished(worker, 120_000);
    expect(gaveUp.code, gaveUp.stderr).toBe(2);
    expect(gaveUp.stderr).toMatch(
      /fanout: the store postgres:\/\/fanout@127\.0\.0\.1:\d+\/fanout_outage has been unreachable for \d.*; gave up; check that PostgreSQL is running/,
    );
    expect(gaveUp.stderr).toMatch(/FANOUT_STORE_PATIENCE sets how long to wait, now 3\.0s/);
    expect(gaveUp.stderr).not.toMatch(/internal error|^\s+at /m);
    await cluster.restart();
  }, 300_000);
});
