import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { UserError } from '../src/errors.js';
import { RETURN_FILE } from '../src/api/map-protocol.js';
import { RESULT_FILE, STDERR_FILE, STDOUT_FILE } from '../src/runner/result-record.js';
import { AttemptFiles, TAIL_BYTES } from '../src/storage/attempt-files.js';
import { joinLocation } from '../src/storage/location.js';
import { openStorage, storageFor } from '../src/storage/open-storage.js';
import { S3Storage } from '../src/storage/s3-storage.js';
import { LazyS3Storage } from '../src/storage/lazy-s3-storage.js';
import { s3SettingsFromEnvironment } from '../src/storage/s3-settings.js';
import { createBucket, describeWithS3, s3Endpoint, s3Env, S3_TEST_CREDENTIALS } from './services/s3.js';
import { storageContract } from './storage-contract.js';

describeWithS3('S3 storage', () => {
  let endpoint: string;
  let bucket: string;
  let local: string;

  beforeAll(async () => {
    endpoint = s3Endpoint();
    bucket = await createBucket(endpoint);
    // Configured the way users configure it: the standard AWS variables.
    Object.assign(process.env, s3Env(endpoint));
    local = await mkdtemp(join(tmpdir(), 'fanout-storage-s3-'));
  });
  afterAll(async () => {
    await rm(local, { recursive: true, force: true });
  });

  storageContract('the storage contract on S3', async () => {
    let next = 0;
    return { storage: storageFor(`s3://${bucket}`), newRoot: () => `s3://${bucket}/t${++next}`, isLocal: false };
  });

  storageContract('the storage a process hands around, on S3', async () => {
    let next = 0;
    return { storage: openStorage(), newRoot: () => `s3://${bucket}/any/t${++next}`, isLocal: false };
  });

  it("reads an attempt's logs, result record and return value through the attempt reader", async () => {
    const storage = openStorage();
    const files = new AttemptFiles(storage);
    const attempt = `s3://${bucket}/reader/run-1/3.1`;
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join('');
    const size = Buffer.byteLength(lines);
    await storage.putText(joinLocation(attempt, STDOUT_FILE), lines);
    await storage.putText(joinLocation(attempt, STDERR_FILE), 'héllo 🚀\n');
    // The tail, offsets from there to the end and past it, as on a folder.
    const tail = await files.readLogPiece(attempt, 'stdout');
    expect(tail).toMatchObject({ offset: size - TAIL_BYTES, nextOffset: size, found: true });
    expect(tail.text).toHaveLength(TAIL_BYTES);
    expect(tail.text.endsWith('line 19999\n')).toBe(true);
    expect(await files.readLogPiece(attempt, 'stdout', { offset: size })).toEqual({ offset: size, nextOffset: size, text: '', found: true });
    expect(await files.readLogPiece(attempt, 'stdout', { offset: size + 100 })).toEqual({ offset: size, nextOffset: size, text: '', found: true });
    expect(await files.readLogPiece(attempt, 'stdout', { offset: 7, maxBytes: 7 })).toEqual({ offset: 7, nextOffset: 14, text: 'line 1\n', found: true });
    // A piece that would end inside the rocket stops before it.
    const cut = Buffer.byteLength('héllo ') + 2;
    expect(await files.readLogPiece(attempt, 'stderr', { offset: 0, maxBytes: cut })).toEqual({ offset: 0, nextOffset: cut - 2, text: 'héllo ', found: true });
    expect(await files.readLogPiece(attempt, 'stderr', { offset: cut - 2 })).toMatchObject({ text: '🚀\n', found: true });
    expect(await files.readLogText(attempt, 'stderr')).toBe('héllo 🚀\n');
    const stream = await files.openLog(attempt, 'stdout');
    const chunks: Buffer[] = [];
    for await (const chunk of stream!) chunks.push(Buffer.from(chunk));
    expect(Buffer.concat(chunks).toString()).toBe(lines);

    // A running attempt's logs are uploaded when it ends: until then, none.
    const running = `s3://${bucket}/reader/run-1/4.1`;
    expect(files.arriveWhenEnded(running)).toBe(true);
    expect(await files.readLogPiece(running, 'stdout')).toEqual({ offset: 0, nextOffset: 0, text: '', found: false });
    expect(await files.readLogPiece(running, 'stderr', { offset: 40 })).toEqual({ offset: 40, nextOffset: 40, text: '', found: false });
    expect(await files.openLog(running, 'stdout')).toBeNull();
    expect(await files.readLogText(running, 'stderr')).toBeNull();
    expect(await files.readResultRecord(running)).toBeNull();

    const record = { id: 3, reason: 'ok', exitCode: 0, signal: null, startedAt: 1, endedAt: 2, peakMemory: 3, cpuMs: 4, host: 'worker-1', pid: null };
    await storage.putText(joinLocation(attempt, RESULT_FILE), JSON.stringify(record));
    expect(await files.readResultRecord(attempt)).toEqual(record);

    const outputs = `s3://${bucket}/reader/out/3`;
    expect(await files.readReturnValue(outputs)).toBeUndefined();
    await storage.putText(joinLocation(outputs, RETURN_FILE), '{"mean":2.5}');
    expect(await files.readReturnValue(outputs)).toEqual({ mean: 2.5 });
  });

  it('is what storageFor gives for an s3:// URI, one per configuration', () => {
    expect(storageFor(`s3://${bucket}/a`)).toBeInstanceOf(LazyS3Storage);
    expect(storageFor(`s3://${bucket}/b`)).toBe(storageFor(`s3://${bucket}/a`));
    expect(() => storageFor('s3://')).toThrow(UserError);
  });

  it('uses path-style addressing for a custom endpoint unless told otherwise', () => {
    expect(s3SettingsFromEnvironment({ AWS_ENDPOINT_URL: endpoint })).toMatchObject({ endpoint, forcePathStyle: true, region: undefined });
    expect(s3SettingsFromEnvironment({ AWS_ENDPOINT_URL: 'http://a', AWS_ENDPOINT_URL_S3: 'http://b', AWS_DEFAULT_REGION: 'eu-west-1' })).toMatchObject({
      endpoint: 'http://b',
      region: 'eu-west-1',
    });
    expect(s3SettingsFromEnvironment({ AWS_ENDPOINT_URL: endpoint, AWS_S3_FORCE_PATH_STYLE: 'false' }).forcePathStyle).toBe(false);
    expect(s3SettingsFromEnvironment({}).forcePathStyle).toBe(false);
    expect(s3SettingsFromEnvironment({ AWS_S3_FORCE_PATH_STYLE: '1' }).forcePathStyle).toBe(true);
  });

  it('streams a file larger than a part through a multipart upload and back', async () => {
    const source = join(local, 'big.bin');
    const hash = await writeRandomFile(source, 20 * 1024 * 1024);
    const send = vi.spyOn(S3Client.prototype, 'send');
    const uri = `s3://${bucket}/big/big.bin`;
    try {
      await storageFor(uri).putFile(source, uri);
      const parts = send.mock.calls.filter(([command]) => command instanceof UploadPartCommand).length;
      expect(parts).toBe(3);
    } finally {
      send.mockRestore();
    }
    expect((await storageFor(uri).list(`s3://${bucket}/big`))[0]?.size).toBe(20 * 1024 * 1024);
    const target = join(local, 'big-down.bin');
    await storageFor(uri).getFile(uri, target);
    expect(
      createHash('sha256')
        .update(await readFile(target))
        .digest('hex'),
    ).toBe(hash);
  });

  it('says when the endpoint cannot be reached, within seconds', async () => {
    // A check answers at once, whatever the patience; other calls ride out an outage for FANOUT_S3_PATIENCE (here none).
    const patient = new S3Storage(s3SettingsFromEnvironment({ ...s3Env('http://127.0.0.1:1') }));
    const storage = new S3Storage(s3SettingsFromEnvironment({ ...s3Env('http://127.0.0.1:1'), FANOUT_S3_PATIENCE: '0' }));
    const started = Date.now();
    await expectUserError(
      storage.putText(`s3://${bucket}/x`, 'x'),
      'cannot reach S3 at http://127.0.0.1:1 (connection refused); check AWS_ENDPOINT_URL and that the service is up',
    );
    await expectUserError(patient.check(`s3://${bucket}/x`), /^cannot reach S3 at http:\/\/127\.0\.0\.1:1 \(connection refused\)/);
    await writeFile(join(local, 'unsent.txt'), 'unsent');
    await expectUserError(storage.putFile(join(local, 'unsent.txt'), `s3://${bucket}/unsent.txt`), /^cannot reach S3 at/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('says when S3 refuses the credentials, without showing them', async () => {
    const wrongKey = { accessKeyId: 'WRONGKEYID7Q2', secretAccessKey: 'wrong-secret-ZX81' };
    const withWrongKey = new S3Storage({ ...s3SettingsFromEnvironment(), credentials: wrongKey });
    const fix = 'check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE';
    const errors = [
      await expectUserError(withWrongKey.check(`s3://${bucket}/p`), `S3 refused the credentials for s3://${bucket} (InvalidAccessKeyId); ${fix}`),
      await expectUserError(withWrongKey.putText(`s3://${bucket}/p/x`, 'x'), /\(InvalidAccessKeyId\)/),
      await expectUserError(withWrongKey.list(`s3://${bucket}/p`), /\(InvalidAccessKeyId\)/),
      // A HEAD answer has no body to name the code; its 403 is enough.
      await expectUserError(withWrongKey.exists(`s3://${bucket}/p/x`), `S3 refused the credentials for s3://${bucket} (HTTP 403); ${fix}`),
    ];
    const wrongSecret = { accessKeyId: S3_TEST_CREDENTIALS.accessKeyId, secretAccessKey: 'wrong-secret-ZX81' };
    const withWrongSecret = new S3Storage({ ...s3SettingsFromEnvironment(), credentials: wrongSecret });
    errors.push(await expectUserError(withWrongSecret.check(`s3://${bucket}/p`), `S3 refused the credentials for s3://${bucket} (SignatureDoesNotMatch); ${fix}`));
    for (const error of errors) {
      for (const secret of [wrongKey.accessKeyId, wrongKey.secretAccessKey, S3_TEST_CREDENTIALS.secretAccessKey]) {
        expect(error.describe()).not.toContain(secret);
        expect(error.stack).not.toContain(secret);
      }
    }
  });

  it('says when there are no credentials at all', async () => {
    const saved = { ...process.env };
    try {
      for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) delete process.env[name];
      Object.assign(process.env, {
        AWS_SHARED_CREDENTIALS_FILE: join(local, 'no-credentials'),
        AWS_CONFIG_FILE: join(local, 'no-config'),
        AWS_EC2_METADATA_DISABLED: 'true',
      });
      const storage = new S3Storage(s3SettingsFromEnvironment());
      await expectUserError(storage.check(`s3://${bucket}/p`), `found no S3 credentials for s3://${bucket}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE`);
    } finally {
      for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
      Object.assign(process.env, saved);
    }
  });

  it('says when the bucket does not exist', async () => {
    const storage = storageFor(`s3://no-such-bucket-${bucket}`);
    const message = `bucket "no-such-bucket-${bucket}" does not exist at ${endpoint}; create it or fix the s3:// URI`;
    await expectUserError(storage.check(`s3://no-such-bucket-${bucket}/work`), message);
    await expectUserError(storage.putText(`s3://no-such-bucket-${bucket}/work/x`, 'x'), message);
    await expectUserError(storage.getText(`s3://no-such-bucket-${bucket}/work/x`), message);
    await expectUserError(storage.list(`s3://no-such-bucket-${bucket}/work`), message);
    await writeFile(join(local, 'small.txt'), 'small');
    await expectUserError(storage.putFile(join(local, 'small.txt'), `s3://no-such-bucket-${bucket}/work/small.txt`), message);
  });

  it('refuses a malformed URI', async () => {
    const storage = storageFor(`s3://${bucket}`);
    await expectUserError(storage.putText('s3://', 'x'), '"s3://" names no bucket; write it as s3://bucket/prefix');
    await expectUserError(storage.getText('s3:///key'), /names no bucket/);
  });
});

async function expectUserError(promise: Promise<unknown>, expected: string | RegExp): Promise<UserError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(UserError);
  const line = (error as UserError).describe();
  if (typeof expected === 'string') expect(line).toBe(expected);
  else expect(line).toMatch(expected);
  return error as UserError;
}

/** A file of random bytes, written in pieces; returns its sha256. */
async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let written = 0; written < size; written += 1024 * 1024) {
    const piece = randomBytes(Math.min(1024 * 1024, size - written));
    hash.update(piece);
    if (!out.write(piece)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return hash.digest('hex');
}
