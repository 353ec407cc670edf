import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sandbox } from './harness.js';
import { createDatabase, describeWithPostgres } from './services/postgres.js';

const EXAMPLE = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'per-file', 'job.yaml');

/** `--store postgres://` is the same fanout on every backend: here the local one, with resume and the reading commands. */
describeWithPostgres('the local backend with its state in PostgreSQL', (adminUrl) => {
  let box: Sandbox;
  let env: Record<string, string>;
  beforeAll(async () => {
    box = new Sandbox();
    env = { FANOUT_STORE: await createDatabase(adminUrl, 'fanout_local_backend') };
  });
  afterAll(() => box.cleanup());

  it('runs the main example, resumes it with every task skipped, and answers status, tasks, logs and runs', async () => {
    const first = await box.run(['run', EXAMPLE, '--json'], { env });
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ state: 'succeeded', backend: 'local', counts: { succeeded: 5 } });

    const again = await box.run(['run', EXAMPLE, '--json'], { env });
    expect(JSON.parse(again.stdout)).toMatchObject({ state: 'succeeded', counts: { skipped: 5 } });

    const tasks = JSON.parse((await box.run(['tasks', '1', '--json'], { env })).stdout) as Array<{ name: string; state: string }>;
    expect(tasks.map((t) => t.name)).toEqual(['alpha', 'beta', 'delta', 'epsilon', 'gamma']);
    const logs = await box.run(['logs', '2', 'alpha', '--stderr'], { env });
    expect(logs.code, logs.stderr).toBe(0);
    const runs = JSON.parse((await box.run(['runs', '--json'], { env })).stdout) as unknown[];
    expect(runs).toHaveLength(2);
    // Nothing of the state went to the home's SQLite file.
    expect(JSON.parse((await box.run(['runs', '--json'])).stdout)).toEqual([]);
  });
});
