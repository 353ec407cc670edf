import type { ContainerEngineName } from '../job/job-schema.js';
import { shellQuote } from '../job/shell-quote.js';

/**
 * What differs between container engines, declared once: how a task's container is started and
 * stopped, and how an image is looked at. Everything else (mounts, the wrapper script, the plan)
 * is the same for all. A shell word is either literal (quoted here) or `{ shell }`, left for the
 * shell to expand where the attempt runs (the user's ids).
 */

export type ShellWord = string | { shell: string };

/** One bind mount; `target` is the same path as `source` unless the job file says otherwise. */
export interface BindMount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** One container run, as the wrapper script starts it. */
export interface ContainerRun {
  image: string;
  mounts: BindMount[];
  workdir: string;
  /** Names of variables passed from the attempt's environment into the container. */
  envNames: string[];
  /** Bytes; null: no limit. */
  memory: number | null;
  cpus: number;
  /** A last-resort limit the engine enforces itself (seconds), past the runner's own; null: none. */
  timeoutSeconds: number | null;
  /** A file the engine writes the container's id into, for stopping it; null: none. */
  cidFile: string | null;
  /** Labels that name the attempt, so a container left behind can be found and removed. */
  labels: Record<string, string>;
  options: string[];
  /** Pull the image where the attempt runs when it is not there. */
  pullMissing: boolean;
  /** The command in the container: argv (its first word literal). */
  argv: [string, ...ShellWord[]];
}

/** What an attempt brings to a container shared with other attempts (see AttemptLaunch.sharedContainer). */
export interface SharedContainer {
  engine: ContainerEngineName;
  /** The container this attempt alone would run in; a shared one takes its image, limits and mounts. */
  run: ContainerRun;
  /** The attempt's own command, to run inside the shared container. */
  command: string;
}

export interface ContainerEngine {
  readonly name: ContainerEngineName;
  /**
   * True when a daemon or monitor (conmon, dockerd) runs the container, not the client process:
   * stopping the client does not stop it, and the engine enforces and measures its limits, so
   * the runner outside only reserves them. False for apptainer/singularity, whose processes stay
   * the runner's children and are limited and measured like any command.
   */
  readonly detached: boolean;
  /** The words that start the container (after the engine's program name). */
  runWords(run: ContainerRun): ShellWord[];
  /** argv printing the image's content identity, or failing when it is not present. */
  imageIdArgs(image: string): string[];
  pullArgs(image: string): string[];
  /** argv printing the engine's version. */
  readonly versionArgs: string[];
  /** argv that succeeds only when the engine can run containers here (its storage, runtime or daemon answer); null: nothing to ask beyond the program. */
  readonly readyArgs: string[] | null;
}

function volume(mount: BindMount): string {
  return `${mount.source}:${mount.target}${mount.readOnly ? ':ro' : ''}`;
}

/** podman and docker share their command line, but for the few flags one lacks. */
function ociRunWords(run: ContainerRun, extra: { keepId: boolean; timeout: boolean }): ShellWord[] {
  const words: ShellWord[] = ['run', '--rm', ...(run.cidFile === null ? [] : ['--cidfile', run.cidFile])];
  for (const [key, value] of Object.entries(run.labels)) words.push('--label', `${key}=${value}`);
  // Files the task writes belong to whoever runs fanout, not to the image's user (often root).
  words.push('--user', { shell: '"$(id -u):$(id -g)"' });
  // Rootless podman maps the user to root unless told to keep its id.
  if (extra.keepId) words.push({ shell: '$([ "$(id -u)" = 0 ] || echo --userns=keep-id)' });
  // The host's network, as the command has outside a container, unless the job chose one.
  if (!run.options.some((option) => /^--net(work)?\b/.test(option))) words.push('--network=host');
  words.push(`--pull=${run.pullMissing ? 'missing' : 'never'}`);
  if (run.memory !== null) words.push('--memory', String(run.memory), '--memory-swap', String(run.memory));
  words.push('--cpus', String(run.cpus));
  if (extra.timeout && run.timeoutSeconds !== null) words.push('--timeout', String(run.timeoutSeconds));
  words.push('--workdir', run.workdir);
  for (const mount of run.mounts) words.push('--volume', volume(mount));
  for (const name of run.envNames) words.push('--env', name);
  // An image whose entrypoint is its tool would take our shell as that tool's argument.
  words.push('--entrypoint', run.argv[0], ...run.options, run.image, ...run.argv.slice(1));
  return words;
}

function apptainerRunWords(run: ContainerRun): ShellWord[] {
  // The attempt's environment passes through by default; the user is the caller already.
  const words: ShellWord[] = ['exec', '--pwd', run.workdir];
  for (const mount of run.mounts) words.push('--bind', volume(mount));
  words.push(...run.options, run.image, ...run.argv);
  return words;
}

/** podman and docker look at and fetch images alike. */
const OCI_IMAGES = {
  imageIdArgs: (image: string) => ['image', 'inspect', '--format', '{{.Id}}', image],
  pullArgs: (image: string) => ['pull', '--quiet', image],
  versionArgs: ['--version'],
};

/** apptainer and singularity are one program under two names. */
function apptainerLike(name: 'apptainer' | 'singularity'): ContainerEngine {
  return {
    name,
    detached: false,
    runWords: apptainerRunWords,
    imageIdArgs: (image) => ['inspect', image],
    pullArgs: (image) => ['pull', image],
    versionArgs: ['--version'],
    readyArgs: null,
  };
}

const ENGINES: Record<ContainerEngineName, ContainerEngine> = {
  podman: {
    name: 'podman',
    detached: true,
    runWords: (run) => ociRunWords(run, { keepId: true, timeout: true }),
    ...OCI_IMAGES,
    readyArgs: ['info', '--format', '{{.Host.OCIRuntime.Name}}'],
  },
  docker: {
    name: 'docker',
    detached: true,
    runWords: (run) => ociRunWords(run, { keepId: false, timeout: false }),
    ...OCI_IMAGES,
    readyArgs: ['info', '--format', '{{.ServerVersion}}'],
  },
  apptainer: apptainerLike('apptainer'),
  singularity: apptainerLike('singularity'),
};

export function containerEngine(name: ContainerEngineName): ContainerEngine {
  return ENGINES[name];
}

/** Shell words as one command line. */
export function joinWords(words: readonly ShellWord[]): string {
  return words.map((word) => (typeof word === 'string' ? shellQuote(word) : word.shell)).join(' ');
}
