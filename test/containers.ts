import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import type { Sandbox } from './harness.js';

/**
 * Real podman for the container suites: each test file builds its own tiny image (FROM scratch,
 * Debian's busybox-static, a marker file) under a tag no other file or run uses, and removes it
 * at the end. Where podman cannot run a container the suite is skipped with one line saying how
 * to set it up — unless FANOUT_REQUIRE_SERVICES=1 (CI), where it fails and says why.
 */

/** The file inside every test image that proves a command ran in it: it holds what `build` was given. */
export const MARKER = '/inside-image';

/** The image's own user: a container that ran as it (not as the user running fanout) would leave files owned by this uid. */
const IMAGE_UID = 4321;

const BUSYBOX = '/bin/busybox';
/** Images this process built: a tag built again leaves its previous image untagged, which the cleanup removes too. */
const built = new Set<string>();
const PODMAN_TIMEOUT_MS = 120_000;

/** The engines the suites run for real: podman everywhere, docker on the local backend (its daemon reached through DOCKER_HOST). */
export type TestEngine = 'podman' | 'docker';

function engineCall(engine: TestEngine, args: string[]): string {
  return execFileSync(engine, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: PODMAN_TIMEOUT_MS });
}

function podman(args: string[]): string {
  return engineCall('podman', args);
}

function said(error: unknown): string {
  const { stderr, stdout, message } = error as { stderr?: string | Buffer; stdout?: string | Buffer; message: string };
  const text = `${stderr?.toString() ?? ''}${stdout?.toString() ?? ''}`.trim() || message;
  return text.split('\n').filter(Boolean).slice(-2).join('; ');
}

/**
 * Build the test image under `tag`, its marker file holding `marker`; the same tag built again
 * with another marker is the same name for new content (a retagged image). Returns its id.
 */
export function buildImage(tag: string, marker: string, engine: TestEngine = 'podman'): string {
  const context = mkdtempSync(join(tmpdir(), 'fanout-image-'));
  try {
    copyFileSync(BUSYBOX, join(context, 'busybox'));
    writeFileSync(join(context, 'marker'), `${marker}\n`);
    // Docker's builder looks for a Dockerfile; podman reads either name.
    writeFileSync(
      join(context, 'Dockerfile'),
      [
        'FROM scratch',
        'COPY busybox /bin/busybox',
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
        'RUN mkdir -p /tmp && chmod 1777 /tmp',
        `COPY marker ${MARKER}`,
        `USER ${IMAGE_UID}:${IMAGE_UID}`,
        '',
      ].join('\n'),
    );
    engineCall(engine, ['build', '--quiet', '--tag', tag, context]);
    const id = engineCall(engine, ['image', 'inspect', '--format', '{{.Id}}', tag]).trim();
    if (engine === 'podman') built.add(id);
    return id;
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

/** Why podman cannot run the freshly built `tag` here, or null when it can. */
function cannotRun(tag: string): string | null {
  try {
    execFileSync('podman', ['--version'], { stdio: 'pipe' });
  } catch {
    return 'podman is not installed';
  }
  try {
    buildImage(tag, tag);
  } catch (error) {
    return `podman build: ${said(error)}`;
  }
  try {
    const inside = podman(['run', '--rm', tag, 'cat', MARKER]).trim();
    return inside === tag ? null : `podman run printed "${inside}", not the image's marker`;
  } catch (error) {
    return `podman run: ${said(error)}`;
  }
}

/**
 * `describe` for a suite that runs containers, handed its image's tag (built before the suite;
 * `localhost/fanout-test-<name>-<random>:1`); every image under that name is removed after it.
 */
export function describeWithPodman(name: string, title: string, body: (tag: string) => void): void {
  const repository = `localhost/fanout-test-${name}-${randomBytes(3).toString('hex')}`;
  const tag = `${repository}:1`;
  const why = cannotRun(tag);
  const removeImages = () => {
    try {
      const ids = podman(['images', '--quiet', '--filter', `reference=${repository}`])
        .split('\n')
        .filter(Boolean);
      if (ids.length > 0) podman(['rmi', '--force', ...new Set(ids)]);
    } catch {
      // Nothing to remove, or podman is not there.
    }
    for (const id of built) {
      try {
        podman(['rmi', id]);
      } catch {
        // Removed above, or still tagged by someone else: not ours to force.
      }
    }
  };
  if (why !== null && process.env.FANOUT_REQUIRE_SERVICES !== '1') {
    removeImages();
    console.log(`${title}: skipped (${why}); set podman up with: bash scripts/containers/setup.sh`);
    describe.skip(title, () => body(tag));
    return;
  }
  describe(title, () => {
    beforeAll(() => {
      if (why !== null) throw new Error(`podman is required here (FANOUT_REQUIRE_SERVICES=1) but cannot run a container: ${why}`);
    });
    afterAll(removeImages);
    body(tag);
  });
}

/** Containers fanout started under this sandbox (an attempt's, or a packed element's with `per: element`), running (`all`: or not). */
function sandboxContainers(box: Sandbox, all: boolean): string[] {
  const format = '{{.ID}}\t{{ index .Labels "fanout.attempt" }}\t{{ index .Labels "fanout.element" }}';
  const lines = podman(['ps', ...(all ? ['--all'] : []), '--format', format]);
  return lines
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([, attempt, element]) => attempt?.startsWith(box.dir) || element?.startsWith(box.dir))
    .map(([id]) => id!);
}

/** Containers of this sandbox's attempts that still exist (running or not). */
export function containersLeft(box: Sandbox): string[] {
  return sandboxContainers(box, true);
}

/** Containers of this sandbox's attempts that are running now. */
export function containersRunning(box: Sandbox): string[] {
  return sandboxContainers(box, false);
}

/**
 * A task that ignores the polite SIGTERM: only a stop sent to the container itself (podman stop,
 * which kills after its grace) ends it. Killing the engine's client process, even with SIGKILL,
 * would leave it running.
 */
export const IGNORES_TERM = `"trap '' TERM; sleep 60"`;

const TWENTY = Array.from({ length: 20 }, (_, i) => `t${i}`);

/**
 * Twenty tasks, two at a time, that each leave in {{ out }} what they saw inside: the image's
 * marker, the FANOUT_* variables and their uid.
 */
export function insideJob(image: string, extra: string[] = []): string {
  return [
    'name: inside',
    `command: cat ${MARKER} > {{ out }}/marker && env | grep ^FANOUT_ | sort > {{ out }}/env && id -u > {{ out }}/uid`,
    'tasks:',
    `  each: [${TWENTY.join(', ')}]`,
    'concurrency: 2',
    'container:',
    `  image: ${image}`,
    '  pull: never',
    ...extra,
    '',
  ].join('\n');
}

/** Every task of `insideJob` ran in `image` (its marker), as the user running fanout, with its FANOUT_* variables. */
export function expectRanInside(outdir: string, marker: string): void {
  const uid = process.getuid!();
  for (const name of TWENTY) {
    const out = join(outdir, name);
    expect(readFileSync(join(out, 'marker'), 'utf8'), name).toBe(`${marker}\n`);
    expect(Number(readFileSync(join(out, 'uid'), 'utf8')), name).toBe(uid);
    expect(statSync(join(out, 'marker')).uid, name).toBe(uid);
    const env = readFileSync(join(out, 'env'), 'utf8');
    expect(env, name).toMatch(new RegExp(`^FANOUT_TASK=${name}$`, 'm'));
    expect(env, name).toMatch(/^FANOUT_ATTEMPT=1$/m);
    expect(env, name).toMatch(/^FANOUT_RUN=\d+$/m);
  }
}

/**
 * A task that reads 150 MB into memory under a 60 MB limit, with retries that multiply its memory
 * by 4: killed by the container's memory limit first (oom), then it fits.
 */
export const OOM_THEN_FITS = ['command: head -c 150000000 /dev/zero | tail > /dev/null', 'tasks:', '  each: [hog]'];

/** 60 MB a task, and retries that multiply it by 4: what lets OOM_THEN_FITS fit on its second attempt. */
export const OOM_RETRIES = ['resources:', '  memory: 60MB', 'retry:', '  max: 2', '  escalate:', '    memory: 4'];
