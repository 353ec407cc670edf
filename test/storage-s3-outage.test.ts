import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { UserError } from '../src/errors.js';
import { s3SettingsFromEnvironment } from '../src/storage/s3-settings.js';
import { S3Storage } from '../src/storage/s3-storage.js';
import { createBucket, describeWithS3, s3Env, startS3Server, S3_TEST_CREDENTIALS, type Server } from './services/s3.js';

/**
 * A short S3 outage, for real: this file's own s3rver (the suite's one is shared and must stay
 * up) is stopped while a transfer is tried, and started again about 10 s later on the same port
 * and data folder. The transfer must ride it out; a permanent error must still fail at once.
 */

const OUTAGE_MS = 10_000;

describeWithS3('S3 storage through an outage', () => {
  let folder: string;
  let server: Server;
  let port: string;
  let bucket: string;
  let storage: S3Storage;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'fanout-s3-outage-'));
    server = await startS3Server(join(folder, 'data'));
    port = new URL(server.endpoint).port;
    bucket = await createBucket(server.endpoint);
    // The patience users get by default (FANOUT_S3_PATIENCE unset).
    storage = new S3Storage({ ...s3SettingsFromEnvironment(s3Env(server.endpoint)), credentials: S3_TEST_CREDENTIALS });
  });
  afterAll(async () => {
    await server.stop();
    await rm(folder, { recursive: true, force: true });
  });

  /** Stop the server, run `transfer` while it is down, and start it again after the outage. */
  async function duringOutage<T>(transfer: () => Promise<T>): Promise<T> {
    await server.stop();
    const pending = transfer();
    // Marked handled now: a transfer that fails fails the test below, not as an unhandled rejection.
    pending.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    server = await startS3Server(join(folder, 'data'), Number(port));
    return pending;
  }

  it('uploads a file that was being sent when S3 went away, once it is back', async () => {
    const local = join(folder, 'upload.bin');
    const bytes = Buffer.alloc(3 * 1024 * 1024, 7);
    await writeFile(local, bytes);
    await duringOutage(() => storage.putFile(local, `s3://${bucket}/staged/upload.bin`));
    await storage.getFile(`s3://${bucket}/staged/upload.bin`, join(folder, 'check.bin'));
    expect((await readFile(join(folder, 'check.bin'))).equals(bytes)).toBe(true);
  }, 120_000);

  it('downloads and lists through an outage too', async () => {
    await storage.putText(`s3://${bucket}/inputs/a.txt`, 'input a\n');
    await duringOutage(() => storage.getFile(`s3://${bucket}/inputs/a.txt`, join(folder, 'a.txt')));
    expect(await readFile(join(folder, 'a.txt'), 'utf8')).toBe('input a\n');
    const listed = await duringOutage(() => storage.list(`s3://${bucket}/inputs`));
    expect(listed.map((object) => object.relative)).toEqual(['a.txt']);
  }, 120_000);

  it('fails at once, without retrying, on an error that will not pass: a missing bucket', async () => {
    const send = vi.spyOn(S3Client.prototype, 'send');
    try {
      await expect(storage.putText(`s3://no-such-${bucket}/x`, 'x')).rejects.toThrow(UserError);
      expect(send).toHaveBeenCalledTimes(1);
    } finally {
      send.mockRestore();
    }
  });

  it('gives up after the patience with a message that says so', async () => {
    await server.stop();
    try {
      const brief = new S3Storage({ ...s3SettingsFromEnvironment({ ...s3Env(server.endpoint), FANOUT_S3_PATIENCE: '3s' }), credentials: S3_TEST_CREDENTIALS });
      await expect(brief.putText(`s3://${bucket}/y`, 'y')).rejects.toThrow(
        new RegExp(`^cannot reach S3 at http://127\\.0\\.0\\.1:${port} \\(connection refused\\), still after \\d+(\\.\\d)?s of retries$`),
      );
    } finally {
      server = await startS3Server(join(folder, 'data'), Number(port));
    }
  }, 60_000);
});
