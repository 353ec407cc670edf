// A throwaway PostgreSQL cluster in a temp folder, for the tests (test/services/postgres.ts) and
// the benchmarks (bench/workers.mjs): one implementation for both. Plain ESM JavaScript so the
// benchmarks run it without a build; its types are in throwaway-postgres.d.mts.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** The line to print when there is no server to start. */
export const HOW_TO_GET = 'install PostgreSQL with: apt-get install postgresql';

/**
 * @typedef {object} ThrowawayPostgresOptions
 * @property {boolean} [fsync] false turns fsync off: no durability, fast on slow disks (default true)
 * @property {number} [maxConnections] the server's max_connections (default 200)
 * @property {Record<string, string | number>} [settings] more server settings, passed as `-c name=value`
 * @property {string} [parent] the folder the cluster's temp folder goes in (default: the system temp folder)
 */

/**
 * @typedef {object} ThrowawayPostgres
 * @property {string} url the superuser's URL (user `fanout`, random password, database `postgres`)
 * @property {number} port
 * @property {string} folder the temp folder: data/, socket/, server.log
 * @property {() => number | null} serverPid the postmaster's pid (every server process is its child), null when it is not running
 * @property {() => Promise<void>} stop stops the server (fast shutdown) and removes the folder
 * @property {() => Promise<void>} crash stops the server at once (`-m immediate`, as a crash or a power cut would); its data stays
 * @property {() => Promise<void>} restart starts it again (after `crash`) on the same port, with the same settings
 */

/**
 * Runs `initdb` into a fresh temp folder (superuser `fanout`, random password, scram-sha-256) and
 * starts the server on a free port of 127.0.0.1 with its socket inside that folder, so it never
 * touches the machine's own clusters. Under root the folder is handed to the unprivileged
 * `postgres` user (created when missing), since PostgreSQL refuses to run as root.
 *
 * @param {ThrowawayPostgresOptions} [options]
 * @returns {Promise<ThrowawayPostgres>}
 */
export async function startThrowawayPostgres(options = {}) {
  const bin = findServerBinaries();
  if (!bin) throw new Error(`no PostgreSQL server binaries (initdb, pg_ctl) found`);
  const folder = await mkdtemp(join(options.parent ?? tmpdir(), 'fanout-pg-'));
  const data = join(folder, 'data');
  const socketDir = join(folder, 'socket');
  const password = randomBytes(12).toString('hex');
  await mkdir(socketDir);
  await writeFile(join(folder, 'pwfile'), `${password}\n`, { mode: 0o600 });
  const asUser = process.getuid?.() === 0 ? await serverUser(folder) : [];
  /** @param {string} command @param {string[]} args */
  const pgRun = (command, args) => run(asUser.length ? 'runuser' : command, asUser.length ? [...asUser, command, ...args] : args);
  const serverPid = () => {
    try {
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`) ? pid : null;
    } catch {
      return null;
    }
  };
  const stop = async () => {
    await pgRun(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']).catch(() => undefined);
    await rm(folder, { recursive: true, force: true });
  };
  try {
    await pgRun(join(bin, 'initdb'), [
      '-D',
      data,
      '-U',
      'fanout',
      '--auth=scram-sha-256',
      `--pwfile=${join(folder, 'pwfile')}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
    ]);
    const port = await freePort();
    const settings = {
      listen_addresses: '127.0.0.1',
      ...(options.fsync === false ? { fsync: 'off' } : {}),
      max_connections: options.maxConnections ?? 200,
      ...options.settings,
    };
    const serverOptions = [`-p ${port}`, `-k ${socketDir}`, ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`)].join(' ');
    const start = async () => {
      await pgRun(join(bin, 'pg_ctl'), ['-D', data, '-l', join(folder, 'server.log'), '-o', serverOptions, '-w', '-t', '60', 'start']);
    };
    const crash = async () => {
      await pgRun(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
    };
    await start();
    return { url: `postgres://fanout:${password}@127.0.0.1:${port}/postgres`, port, folder, serverPid, stop, crash, restart: start };
  } catch (error) {
    const log = existsSync(join(folder, 'server.log')) ? readFileSync(join(folder, 'server.log'), 'utf8').trim().split('\n').at(-1) : '';
    const e = /** @type {Error & { stderr?: string }} */ (error);
    const said = e.stderr?.trim().split('\n').at(-1) || e.message.split('\n')[0];
    await stop();
    throw new Error(`could not start a throwaway PostgreSQL: ${said}${log ? ` (${log})` : ''}`);
  }
}

/**
 * The newest installed server's bin folder (Debian keeps them under /usr/lib/postgresql/<version>/bin).
 * @returns {string | null}
 */
export function findServerBinaries() {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

/**
 * Create a database on the cluster (dropping one of that name first) and return its URL, with
 * the same user and password as `adminUrl`.
 * @param {string} adminUrl
 * @param {string} name
 * @returns {Promise<string>}
 */
export async function createDatabase(adminUrl, name) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * `runuser` arguments that run a command as the `postgres` system user (created when missing), owner of `folder`.
 * @param {string} folder
 * @returns {Promise<string[]>}
 */
async function serverUser(folder) {
  const user = 'postgres';
  let ids = await idsOf(user);
  if (!ids) {
    await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
    ids = await idsOf(user);
    if (!ids) throw new Error(`could not create the system user ${user}`);
  }
  for (const path of [folder, join(folder, 'socket'), join(folder, 'pwfile')]) await chown(path, ids.uid, ids.gid);
  return ['-u', user, '--'];
}

/**
 * @param {string} user
 * @returns {Promise<{ uid: number; gid: number } | null>}
 */
async function idsOf(user) {
  try {
    const uid = Number((await run('id', ['-u', user])).stdout.trim());
    const gid = Number((await run('id', ['-g', user])).stdout.trim());
    return { uid, gid };
  } catch {
    return null;
  }
}

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}
