import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/storage/s3-client.js';
import { beforeAll, describe, inject } from 'vitest';

/**
 * A real S3-protocol server for the tests: a vitest globalSetup that starts s3rver (an npm
 * devDependency) as its own process on a free port of 127.0.0.1, with its data in a temp folder,
 * and stops it by pid when the run ends. Test files get the endpoint with `inject('s3Endpoint')`
 * (also in FANOUT_TEST_S3_ENDPOINT), make their own bucket with `createBucket`, and give spawned
 * processes `s3Env(endpoint)`.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    /** The test S3 server's endpoint URL, or null when it could not be started. */
    s3Endpoint: string | null;
    /** Why there is no server, when there is none. */
    s3Unavailable: string | null;
  }
}

/** The one account s3rver accepts. */
export const S3_TEST_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
const HOW_TO_GET = 'run npm install (s3rver is a devDependency)';
const START_TIMEOUT_MS = 20_000;
const SERVER_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 's3-server.mjs');

export default async function setup({ provide }: { provide: (key: 's3Endpoint' | 's3Unavailable', value: string | null) => void }) {
  let server: Server | null = null;
  try {
    server = await startServer();
    provide('s3Endpoint', server.endpoint);
    provide('s3Unavailable', null);
    process.env.FANOUT_TEST_S3_ENDPOINT = server.endpoint;
  } catch (error) {
    provide('s3Endpoint', null);
    provide('s3Unavailable', (error as Error).message);
  }
  return async () => {
    if (server) await server.stop();
  };
}

export interface Server {
  endpoint: string;
  stop(): Promise<void>;
}

async function startServer(): Promise<Server> {
  const folder = await mkdtemp(join(tmpdir(), 'fanout-s3-'));
  const server = await startS3Server(folder).catch(async (error: unknown) => {
    await rm(folder, { recursive: true, force: true });
    throw error;
  });
  return {
    endpoint: server.endpoint,
    stop: async () => {
      await server.stop();
      await rm(folder, { recursive: true, force: true });
    },
  };
}

/**
 * An S3 server of the test's own, on its data folder, that the test may stop and start again on
 * the same port and folder (an outage); the globalSetup's server is shared and must stay up.
 */
export async function startS3Server(folder: string, port = 0): Promise<Server> {
  const child = spawn(process.execPath, [SERVER_SCRIPT, folder, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stop = () => stopProcess(child);
  try {
    return { endpoint: await readEndpoint(child), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function readEndpoint(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { endpoint: string }).endpoint);
      } catch {
        reject(new Error(`s3rver said: ${line}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      const said =
        stderr
          .trim()
          .split('\n')
          .find((line) => /Error/.test(line)) ??
        stderr.trim().split('\n')[0] ??
        '';
      reject(new Error(`s3rver exited with ${code}${said ? `: ${said}` : ''}`));
    });
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const forced = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(forced);
}

/** The environment a process needs to use the test server through the standard AWS variables. */
export function s3Env(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
  };
}

/** A new bucket with a random name, so each test file has its own; returns its name. */
export async function createBucket(endpoint: string, name = `fanout-test-${Math.random().toString(36).slice(2, 10)}`): Promise<string> {
  // Built as fanout builds its clients, so the SDK's Node-version warning stays out of the test output too.
  const client = createS3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3_TEST_CREDENTIALS, patienceMs: 0 });
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
  return name;
}

/** The test server's endpoint; only inside a describeWithS3 body, where there is one. */
export function s3Endpoint(): string {
  const endpoint = inject('s3Endpoint') ?? null;
  if (endpoint === null) throw new Error(`no test S3 server: ${inject('s3Unavailable')}`);
  return endpoint;
}

/**
 * `describe` for a suite that needs the test S3 server: where it could not start, skipped with
 * one line saying how to get it — unless FANOUT_REQUIRE_SERVICES=1 (CI), where it fails and says why.
 */
export function describeWithS3(title: string, body: () => void): void {
  const why = (inject('s3Endpoint') ?? null) === null ? (inject('s3Unavailable') ?? 'not started (is test/services/s3.ts in vitest.config.ts globalSetup?)') : null;
  if (why !== null && process.env.FANOUT_REQUIRE_SERVICES !== '1') {
    console.log(`${title}: skipped (no S3 server: ${why}); ${HOW_TO_GET}`);
    describe.skip(title, body);
    return;
  }
  describe(title, () => {
    beforeAll(() => {
      if (why !== null) throw new Error(`S3 is required here (FANOUT_REQUIRE_SERVICES=1) but the test server is not up: ${why}`);
    });
    body();
  });
}
