// The services of the worker campaign, each one the campaign can take down and bring back:
// a throwaway PostgreSQL (stopped with `pg_ctl -m immediate` and started again on the same port
// and data folder), and s3rver behind a TCP gate on a fixed port (closing the gate refuses every
// connection, as a dead endpoint does, while s3rver keeps its data).
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createDatabase, findServerBinaries, HOW_TO_GET, startThrowawayPostgres } from '../../scripts/pg/throwaway-postgres.mjs';
import { ROOT } from './trial.mjs';

const run = promisify(execFile);
// The SDK's Node 20 notice is not what this harness measures (fanout's own stderr is).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** A throwaway PostgreSQL the campaign can stop at once and start again. */
export async function startPostgres(tmpRoot) {
  if (!findServerBinaries()) throw new Error(`the worker campaign needs PostgreSQL's server: ${HOW_TO_GET}`);
  const server = await startThrowawayPostgres({ parent: tmpRoot, fsync: false });
  const bin = findServerBinaries();
  const data = join(server.folder, 'data');
  // The server runs as the unprivileged `postgres` user when we are root (it refuses root).
  const pgCtl = (args) => (process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), ...args]) : run(join(bin, 'pg_ctl'), args));
  return {
    url: server.url,
    database: (name) => createDatabase(server.url, name),
    /** `pg_ctl -m immediate stop`: no shutdown checkpoint, connections cut, as a crash would. */
    stopImmediately: () => pgCtl(['-D', data, '-m', 'immediate', '-w', 'stop']),
    /** Starts it again as it was (pg_ctl keeps the last options in postmaster.opts). */
    start: async () => {
      const opts = `-p ${server.port} -k ${join(server.folder, 'socket')} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
      await pgCtl(['-D', data, '-l', join(server.folder, 'server.log'), '-o', opts, '-w', '-t', '60', 'start']);
    },
    stop: () => server.stop(),
  };
}

/** s3rver in its own process, reached through a gate that can be closed and opened again. */
export async function startS3(tmpRoot) {
  const folder = mkdtempSync(join(tmpRoot, 'fanout-chaos-s3-'));
  const child = spawn(process.execPath, [join(ROOT, 'test', 'services', 's3-server.mjs'), folder], { stdio: ['pipe', 'pipe', 'inherit'] });
  const backend = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
    createInterface({ input: child.stdout }).once('line', (line) => resolve(new URL(JSON.parse(line).endpoint)));
  });
  const gate = await openGate(Number(backend.port));
  const endpoint = `http://127.0.0.1:${gate.port}`;
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDENTIALS });
  return {
    endpoint,
    env: { AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey, AWS_REGION: 'us-east-1' },
    bucket: async (name) => {
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    /** An object's bytes, or null when there is none. */
    get: async (bucket, key) => {
      try {
        const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await object.Body.transformToByteArray());
      } catch (error) {
        if (error?.name === 'NoSuchKey' || error?.$metadata?.httpStatusCode === 404) return null;
        throw error;
      }
    },
    outage: () => gate.close(),
    restore: () => gate.open(),
    stop: async () => {
      client.destroy();
      await gate.close();
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP forwarder on a port of its own to 127.0.0.1:`targetPort`. `close()` stops listening and
 * cuts every open connection (new ones are refused); `open()` listens on the same port again.
 */
async function openGate(targetPort) {
  const sockets = new Set();
  let server = null;
  let port = 0;
  const open = () =>
    new Promise((resolve, reject) => {
      server = createServer((client) => {
        const upstream = connect(targetPort, '127.0.0.1');
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.once('close', () => sockets.delete(s));
          s.on('error', () => {
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = server.address().port;
        resolve();
      });
    });
  const close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      if (!server) return resolve();
      server.close(() => resolve());
      server = null;
    });
  await open();
  return { port, open, close };
}
