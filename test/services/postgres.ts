import { beforeAll, describe, inject } from 'vitest';
import { HOW_TO_GET, startThrowawayPostgres, type ThrowawayPostgres } from '../../scripts/pg/throwaway-postgres.mjs';

export { createDatabase } from '../../scripts/pg/throwaway-postgres.mjs';

/**
 * A throwaway PostgreSQL cluster for the tests: a vitest globalSetup that starts one with
 * scripts/pg/throwaway-postgres.mjs (`initdb` into a temp folder, superuser `fanout`, random
 * password, scram-sha-256, a free port of 127.0.0.1, its socket inside that folder; shared with
 * the benchmarks), and stops and removes it when the run ends. It never touches the machine's
 * own clusters. Test files get the admin URL with `inject('pgAdminUrl')`
 * and make their own database with `createDatabase`.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    /** The throwaway cluster's superuser URL, or null when it could not be started. */
    pgAdminUrl: string | null;
    /** Why there is no cluster, when there is none. */
    pgUnavailable: string | null;
  }
}

export default async function setup({ provide }: { provide: (key: 'pgAdminUrl' | 'pgUnavailable', value: string | null) => void }) {
  let cluster: ThrowawayPostgres | null = null;
  try {
    // A throwaway cluster needs no durability; fsync off keeps tests fast on slow disks.
    cluster = await startThrowawayPostgres({ fsync: false, maxConnections: 200 });
    provide('pgAdminUrl', cluster.url);
    provide('pgUnavailable', null);
    process.env.FANOUT_TEST_PG_URL = cluster.url;
  } catch (error) {
    provide('pgAdminUrl', null);
    provide('pgUnavailable', (error as Error).message);
  }
  return async () => {
    if (cluster) await cluster.stop();
  };
}

/**
 * `describe` for a suite that needs PostgreSQL, handing it the admin URL. Where the throwaway
 * cluster could not start, the suite is skipped with one line saying how to get PostgreSQL —
 * unless FANOUT_REQUIRE_SERVICES=1 (CI), where it fails and says why.
 */
export function describeWithPostgres(title: string, body: (adminUrl: string) => void): void {
  const adminUrl = inject('pgAdminUrl');
  const why = inject('pgUnavailable') ?? 'no throwaway PostgreSQL (is test/services/postgres.ts in vitest globalSetup?)';
  if (adminUrl === null || adminUrl === undefined) {
    if (process.env.FANOUT_REQUIRE_SERVICES !== '1') {
      console.log(`${title}: skipped (${why}); ${HOW_TO_GET}`);
      describe.skip(title, () => body(''));
      return;
    }
    describe(title, () => {
      beforeAll(() => {
        throw new Error(`PostgreSQL is required here (FANOUT_REQUIRE_SERVICES=1) but not usable: ${why}`);
      });
      body('');
    });
    return;
  }
  describe(title, () => body(adminUrl));
}
