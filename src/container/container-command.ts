import { join } from 'node:path';
import type { AttemptLaunch } from '../backends/backend.js';
import type { ContainerPlan } from '../job/job-spec.js';
import { shellQuote } from '../job/shell-quote.js';
import type { TemplateValue } from '../job/template.js';
import { CONTAINER_LIMITS_FILE } from '../runner/result-record.js';
import { containerEngine, joinWords, type BindMount, type ContainerRun, type SharedContainer, type ShellWord } from './container-engines.js';
import { attemptMounts } from './container-mounts.js';
import { cidFileName } from './left-containers.js';
import { taskImage, taskMounts } from './container-plan.js';

/**
 * An attempt's command, run in its container. The runner (local launcher, cluster element
 * runner, pull worker) runs what comes out like any command: a shell script that starts the
 * container and waits for it. Where the engine runs containers apart from its client (podman's
 * conmon, dockerd), the script stops the container itself when the attempt is stopped (timeout,
 * cancel, Ctrl-C, Grid Engine's SIGUSR2 before a qdel), and the engine limits memory and cpus:
 * inside, a last step writes the container's memory peak and oom kills to a file the runner
 * reads (CONTAINER_LIMITS_FILE).
 */

/** Seconds a stopped container gets between SIGTERM and SIGKILL; within the runner's grace (10 s by default). */
const CONTAINER_STOP_SECONDS = 5;
/** The engine's own time limit, past the runner's: it only matters if the runner is gone. */
const ENGINE_TIMEOUT_MARGIN_SECONDS = 60;

/**
 * Runs in the container as `/bin/sh -c INNER fanout-task COMMAND LIMITS_FILE`: the command as a
 * child (so a SIGTERM to the container's first process reaches it), then the memory cgroup's
 * peak and oom kills (cgroup v1, else v2), with shell builtins only: an image may hold nothing
 * but a shell.
 */
const INNER = `/bin/sh -c "$1" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT HUP
wait "$child"; code=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done
peak='' oom=''
for f in /sys/fs/cgroup/memory/memory.max_usage_in_bytes /sys/fs/cgroup/memory.peak; do
  if [ -r "$f" ]; then read -r peak < "$f"; break; fi
done
for f in /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events; do
  if [ -r "$f" ]; then while read -r key value; do [ "$key" = oom_kill ] && oom=$value; done < "$f"; break; fi
done
printf 'peak %s\\noom_kill %s\\n' "$peak" "$oom" 2>/dev/null > "$2"
exit "$code"`;

/** The container an attempt runs in, before it is written as a command line. */
export function containerRun(launch: AttemptLaunch, plan: ContainerPlan, values: Readonly<Record<string, TemplateValue>>, baseDir: string): ContainerRun {
  const engine = containerEngine(plan.engine);
  // The plan refused bad mounts before the run started; one that turns bad later is skipped, not fatal.
  const extra = taskMounts(plan, values, baseDir).filter((mount): mount is BindMount => !('problem' in mount));
  const places = [launch.attemptDir, launch.cwd, ...(launch.stagingOut ? [launch.stagingOut] : []), baseDir];
  return {
    image: taskImage(plan, values),
    mounts: attemptMounts(places, values, extra),
    workdir: launch.cwd,
    envNames: Object.keys(launch.env).filter((name) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)),
    memory: engine.detached ? launch.memory : null,
    cpus: launch.cpus,
    timeoutSeconds: launch.timeMs === null ? null : Math.ceil(launch.timeMs / 1000) + ENGINE_TIMEOUT_MARGIN_SECONDS,
    cidFile: join(launch.attemptDir, cidFileName(plan.engine)),
    labels: { 'fanout.attempt': launch.attemptDir },
    options: plan.options,
    pullMissing: plan.pull !== 'never',
    // Only a container with a cgroup of its own can measure itself; apptainer's processes are the runner's to measure.
    argv: engine.detached ? ['/bin/sh', '-c', INNER, 'fanout-task', launch.command, join(launch.attemptDir, CONTAINER_LIMITS_FILE)] : ['/bin/sh', '-c', launch.command],
  };
}

/** The command line that starts the container (what `fanout render` prints). */
export function containerCommandLine(plan: ContainerPlan, run: ContainerRun): string {
  return `${plan.engine} ${joinWords(containerEngine(plan.engine).runWords(run))}`;
}

/**
 * The attempt, run in its container. Its memory is then the engine's to enforce (where the
 * engine runs the container apart from the runner): the runner only reserves it.
 */
export function inContainer(launch: AttemptLaunch, plan: ContainerPlan, values: Readonly<Record<string, TemplateValue>>, baseDir: string): AttemptLaunch {
  const run = containerRun(launch, plan, values, baseDir);
  const line = containerCommandLine(plan, run);
  const engine = containerEngine(plan.engine);
  if (!engine.detached) return { ...launch, command: line };
  const shared = plan.per === 'element' ? { sharedContainer: { engine: plan.engine, run, command: launch.command } } : {};
  const cid = shellQuote(join(launch.attemptDir, cidFileName(plan.engine)));
  const program = shellQuote(plan.engine);
  // The container runs apart from this script: a stop must go to the engine, and this script
  // waits for the container's own exit status after passing the stop on.
  const script = [
    `# fanout: this attempt runs in a container (src/container/container-command.ts)`,
    `rm -f ${cid}`,
    `${line} &`,
    `run=$!`,
    `stop_container() {`,
    `  trap '' TERM INT HUP USR2`,
    `  n=0; while [ ! -s ${cid} ] && kill -0 "$run" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done`,
    `  [ -s ${cid} ] && ${program} stop --time ${CONTAINER_STOP_SECONDS} "$(cat ${cid})" >/dev/null 2>&1`,
    `}`,
    // USR2: Grid Engine's warning before it kills a job (-notify).
    `trap stop_container TERM INT HUP USR2`,
    `wait "$run"; code=$?`,
    `while kill -0 "$run" 2>/dev/null; do wait "$run"; code=$?; done`,
    `rm -f ${cid}`,
    `exit "$code"`,
  ].join('\n');
  return { ...launch, command: script, limitsInside: true, ...shared };
}

/** Tells the element runner it runs in a container of its own: it reads the container's memory peak and oom kills itself. */
export const ELEMENT_IN_CONTAINER_VARIABLE = 'FANOUT_ELEMENT_IN_CONTAINER';

/**
 * The command line that runs a whole element in one container (`container.per: element`):
 * `argv` (the element runner) in the image the element's attempts share, with every folder any
 * of them needs mounted, and the element's limits.
 */
export function elementContainerLine(attempts: readonly SharedContainer[], places: readonly string[], argv: [string, ...ShellWord[]]): string {
  const first = attempts[0]!;
  const mounts = attemptMounts(
    [...places, ...attempts.flatMap((attempt) => attempt.run.mounts.filter((mount) => mount.source === mount.target).map((mount) => mount.source))],
    {},
    uniqueExtra(attempts.flatMap((attempt) => attempt.run.mounts.filter((mount) => mount.source !== mount.target))),
  );
  const run: ContainerRun = {
    ...first.run,
    mounts,
    workdir: places[0]!,
    envNames: [],
    // The scheduler's signals reach the runner through the engine's client (which passes them
    // on); a stop by id is not needed, and elements would share one file.
    cidFile: null,
    // The scheduler limits the element's time.
    timeoutSeconds: null,
    labels: { 'fanout.element': places[0]! },
    argv,
  };
  const words = containerEngine(first.engine).runWords(run);
  // The runner names the host in its records, as it does outside a container.
  const at = words.indexOf('--workdir');
  words.splice(at, 0, '--uts=host', '--env', `${ELEMENT_IN_CONTAINER_VARIABLE}=1`);
  return `${first.engine} ${joinWords(words)}`;
}

function uniqueExtra(mounts: BindMount[]): BindMount[] {
  const seen = new Set<string>();
  return mounts.filter((mount) => {
    const key = `${mount.source}\0${mount.target}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
