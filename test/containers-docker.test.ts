import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildImage, MARKER } from './containers.js';
import { Sandbox } from './harness.js';

/**
 * Tasks in a Docker container, on a real dockerd (Debian's docker.io, started by
 * scripts/containers/start-dockerd.sh, which `.ci/run` calls; tests reach it through
 * DOCKER_HOST). The same wrapper as podman's runs them; what differs is the engine (a daemon
 * runs the container, apart from its client), so these check that a container stops with its
 * attempt and that Docker's memory kill is an oom.
 */

// Where scripts/containers/start-dockerd.sh starts it; the image builds below reach it the same way.
const DOCKER_HOST = (process.env.DOCKER_HOST ??= 'unix:///run/fanout-docker.sock');
const env = { DOCKER_HOST };

function dockerUnavailable(): string | null {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { env: { ...process.env, ...env }, stdio: 'pipe', timeout: 20_000 });
    return null;
  } catch (error) {
    return ((error as { stderr?: Buffer }).stderr?.toString() ?? (error as Error).message).trim().split('\n')[0] ?? 'docker info failed';
  }
}

function docker(args: string[]): string {
  return execFileSync('docker', args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
}

function containersOf(box: Sandbox): string[] {
  return docker(['ps', '--all', '--quiet', '--filter', 'label=fanout.attempt'])
    .split('\n')
    .filter((id) => id !== '' && docker(['inspect', '--format', '{{index .Config.Labels "fanout.attempt"}}', id]).startsWith(box.dir));
}

const why = dockerUnavailable();
const describeWithDocker = why !== null && process.env.FANOUT_REQUIRE_SERVICES !== '1' ? describe.skip : describe;
if (why !== null && process.env.FANOUT_REQUIRE_SERVICES !== '1')
  console.log(`containers on docker: skipped (${why}); start it with: bash scripts/containers/start-dockerd.sh`);

describeWithDocker('containers on docker (local backend)', { timeout: 300_000 }, () => {
  const tag = `localhost/fanout-test-docker:${process.pid}`;
  let box: Sandbox;
  beforeAll(() => {
    if (why !== null) throw new Error(`docker is required here (FANOUT_REQUIRE_SERVICES=1) but not usable: ${why}`);
    buildImage(tag, 'first', 'docker');
  });
  afterAll(() => {
    if (why === null) docker(['image', 'rm', '--force', tag]);
  });
  beforeEach(() => (box = new Sandbox()));
  afterEach(() => box.cleanup());

  function job(lines: string[]): void {
    box.write('job.yaml', ['name: docked', 'container:', `  image: ${tag}`, '  engine: docker', ...lines, ''].join('\n'));
  }

  it('runs each task inside the image, as the user who runs fanout, with its FANOUT_ variables', async () => {
    job([`command: "cat ${MARKER} > {{ out }}/where; id -u >> {{ out }}/where; echo $FANOUT_TASK >> {{ out }}/where"`, 'tasks:', '  each: [a, b, c, d, e, f]']);
    const result = await box.run(['run', 'job.yaml'], { env });
    expect(result.stderr).not.toMatch(/error|warning/i);
    expect(result.code).toBe(0);
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) {
      expect(readFileSync(box.path('fanout-out', 'docked', name, 'where'), 'utf8')).toBe(`first\n${process.getuid?.()}\n${name}\n`);
    }
    expect(containersOf(box)).toEqual([]);
  });

  it("records a kill by the container's memory limit as oom and escalates it to success", async () => {
    job([
      'command: "head -c 150000000 /dev/zero | tail > /dev/null && echo fits > {{ out }}/r"',
      'tasks:',
      '  each: [big]',
      'resources: { memory: 60MB }',
      'retry: { max: 2, escalate: { memory: 4 } }',
    ]);
    const result = await box.run(['run', 'job.yaml'], { env });
    expect(result.code).toBe(0);
    const attempts = box.query<{ reason: string; peak_memory: number | null }>('SELECT reason, peak_memory FROM attempts ORDER BY attempt');
    expect(attempts.map((a) => a.reason)).toEqual(['oom', 'ok']);
    // The second attempt held the 150 MB it read; its peak is the container's, not the client's.
    expect(attempts[1]!.peak_memory).toBeGreaterThan(100_000_000);
  });

  it('stops the container when its attempt times out, leaving none behind', async () => {
    job(['command: "sleep 120"', 'tasks:', '  each: [slow]', 'resources: { time: 3s }']);
    const result = await box.run(['run', 'job.yaml'], { env });
    expect(result.code).not.toBe(0);
    expect(box.query<{ reason: string }>('SELECT reason FROM attempts').map((a) => a.reason)).toEqual(['timeout']);
    expect(containersOf(box)).toEqual([]);
  });

  it('reruns tasks when the tag moves to new content, and skips them when it does not', async () => {
    job([`command: "cat ${MARKER} > {{ out }}/where"`, 'tasks:', '  each: [one]']);
    expect((await box.run(['run', 'job.yaml'], { env })).code).toBe(0);
    buildImage(tag, 'second', 'docker');
    expect((await box.run(['run', 'job.yaml'], { env })).code).toBe(0);
    expect(readFileSync(box.path('fanout-out', 'docked', 'one', 'where'), 'utf8')).toBe('second\n');
    const third = await box.run(['run', 'job.yaml'], { env });
    expect(third.code).toBe(0);
    expect(box.query<{ n: number }>('SELECT COUNT(*) AS n FROM attempts')[0]!.n).toBe(2);
  });
});
