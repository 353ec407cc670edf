import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { JobFileError } from '../errors.js';
import { configuredSettings } from '../job/config-files.js';
import type { Locate } from '../job/field-location.js';
import { containerEngines, type ContainerEngineName } from '../job/job-schema.js';
import type { ContainerPlan, JobSpec } from '../job/job-spec.js';
import { parseTemplate, renderTemplate, type Template, type TemplateValue } from '../job/template.js';
import { containerEngine, type BindMount } from './container-engines.js';
import { parseMount, type MountProblem } from './container-mounts.js';

/**
 * A job's container, resolved once before its run is recorded: settings merged from config
 * files, profile and job file; the engine found; each task's image and mounts rendered and
 * checked; each image's identity read (pulled first if allowed and missing). What can be wrong
 * is refused here, once, instead of failing every task one by one.
 */

/** How long a look at an image may take (a pull has longer); an engine that hangs must not hang the plan. */
const INSPECT_TIMEOUT_MS = 60_000;
const PULL_TIMEOUT_MS = 30 * 60_000;

interface TaskView {
  name: string;
  values: Readonly<Record<string, TemplateValue>>;
}

export async function planContainer(spec: JobSpec, tasks: Iterable<TaskView>, locate: Locate, env: NodeJS.ProcessEnv = process.env): Promise<ContainerPlan | null> {
  const settings = configuredSettings(spec, env).container;
  const jobGaveOne = spec.container !== undefined && Object.keys(spec.container).length > 0;
  if (settings.image === undefined) {
    if (!jobGaveOne) return null;
    throw new JobFileError(locate('container'), 'names no image', 'add `image:`, e.g. image: localhost/mytool:1.0');
  }
  const engine = settings.engine ?? firstEngineFound(env);
  if (engine === null) {
    throw new JobFileError(
      locate('container.engine'),
      `no container engine (${containerEngines.join(', ')}) is on this machine's PATH`,
      'install one (e.g. apt-get install podman), or set `engine:` in the job file or config to one the nodes have',
    );
  }
  if (!onPath(engine, env)) {
    throw new JobFileError(
      locate('container.engine'),
      `${engine} is not on this machine's PATH`,
      `install ${engine}, or choose another engine (${containerEngines.join(', ')})`,
    );
  }
  const plan: ContainerPlan = {
    engine,
    image: settings.image,
    mounts: settings.mounts ?? [],
    options: settings.options ?? [],
    pull: settings.pull ?? 'missing',
    per: settings.per ?? 'task',
    digests: {},
  };
  const images = renderEach(plan, tasks, spec.baseDir, locate);
  for (const image of images) plan.digests[image] = await imageIdentity(plan, image, locate, env);
  return plan;
}

/** The image and mount templates, parsed once: they are rendered for every task and every launch. */
const parsedTemplates = new Map<string, Template>();
function parsedOnce(source: string): Template {
  let template = parsedTemplates.get(source);
  if (!template) parsedTemplates.set(source, (template = parseTemplate(source)));
  return template;
}

/** Image names and mount paths are not shell: template values go in as they are. */
const PLAIN = { quote: false };

/** The image a task runs in (the plan's template, rendered with the task's values). */
export function taskImage(plan: Pick<ContainerPlan, 'image'>, values: Readonly<Record<string, TemplateValue>>): string {
  return renderTemplate(parsedOnce(plan.image), values, PLAIN).trim();
}

/** The image a task runs in and that image's identity when its run was planned. */
export interface ImageIdentity {
  /** The image's name as the task uses it (the template, rendered). */
  image: string;
  /** The engine's content id (sha256:…), or for an image file its path, size and time; null when it could not be read. */
  imageDigest: string | null;
}

/** A task's image and its identity, from the plan its run recorded; null: the run used no container. */
export function imageIdentityOf(plan: ContainerPlan | null | undefined, values: Readonly<Record<string, TemplateValue>>): ImageIdentity | null {
  if (!plan) return null;
  const image = taskImage(plan, values);
  return { image, imageDigest: plan.digests[image] ?? null };
}

/** Whether the image is one for the whole job: its template names only these values (the gather's, which has no task's). */
export function imageNamesOnly(plan: Pick<ContainerPlan, 'image'>, values: Readonly<Record<string, TemplateValue>>): boolean {
  return parsedOnce(plan.image).variables.every((variable) => variable in values);
}

/** A task's `mounts:`, rendered; an entry that is not a mount says why. */
export function taskMounts(plan: Pick<ContainerPlan, 'mounts'>, values: Readonly<Record<string, TemplateValue>>, baseDir: string): Array<BindMount | MountProblem> {
  return plan.mounts.map((entry) => parseMount(renderTemplate(parsedOnce(entry), values, PLAIN), baseDir));
}

/**
 * What a task's container adds to its cache key: the engine, the image's identity (a tag moved to
 * new content reruns the task; the same content skips it), the engine flags and the mounts.
 */
export function containerKey(plan: ContainerPlan | null, values: Readonly<Record<string, TemplateValue>>): string {
  if (plan === null) return '';
  const image = taskImage(plan, values);
  const mounts = plan.mounts.map((entry) => renderTemplate(parsedOnce(entry), values, PLAIN));
  return ['\0container', plan.engine, image, plan.digests[image] ?? '', ...plan.options, ...mounts].join('\0');
}

/** Every task has the same variables: the first one's tell whether the templates name only those. */
function checkVariables(templates: Array<[string, string]>, values: Readonly<Record<string, TemplateValue>>, locate: Locate): void {
  for (const [field, source] of templates) {
    const unknown = parsedOnce(source).variables.find((variable) => !(variable in values));
    if (unknown !== undefined) {
      throw new JobFileError(locate(field), `{{ ${unknown} }} names a variable that a task does not have`, `known variables: ${Object.keys(values).join(', ')}`);
    }
  }
}

/** Each task's image and mounts, rendered and checked; the distinct images. */
function renderEach(plan: ContainerPlan, tasks: Iterable<TaskView>, baseDir: string, locate: Locate): Set<string> {
  const templates: Array<[string, string]> = [['container.image', plan.image], ...plan.mounts.map((entry, i): [string, string] => [`container.mounts.${i}`, entry])];
  let first = true;
  const images = new Set<string>();
  const checkedSources = new Set<string>();
  for (const task of tasks) {
    if (first) checkVariables(templates, task.values, locate);
    first = false;
    const rendered = taskImage(plan, task.values);
    if (rendered === '') {
      throw new JobFileError(locate('container.image'), `is empty for task ${task.name}`, 'give every task an image (check the variable the template names)');
    }
    images.add(rendered);
    taskMounts(plan, task.values, baseDir).forEach((mount, i) => {
      if ('problem' in mount) throw new JobFileError(locate(`container.mounts.${i}`), `${mount.problem} (task ${task.name})`, mount.fix);
      if (checkedSources.has(mount.source)) return;
      if (!existsSync(mount.source)) {
        throw new JobFileError(
          locate(`container.mounts.${i}`),
          `${mount.source} does not exist (task ${task.name})`,
          "create it, or fix the path (relative paths are under the job file's folder)",
        );
      }
      checkedSources.add(mount.source);
    });
  }
  return images;
}

/** How long `fanout backends` waits for an engine's answer: a stuck daemon must not hang it. */
const VERSION_TIMEOUT_MS = 5_000;
const READY_TIMEOUT_MS = 15_000;

/** One container engine as `fanout backends` reports it. */
export interface ContainerEngineReport {
  engine: ContainerEngineName;
  /** On this machine's PATH. */
  found: boolean;
  /** Found and, where the engine can be asked, able to run containers here. */
  usable: boolean;
  /** What `<engine> --version` printed; null when not found or it did not answer. */
  version: string | null;
  detail: string;
}

/** Each container engine: on PATH, its version, and whether it can run containers here (asked all at once, each with a time limit). */
export function containerEngineReports(env: NodeJS.ProcessEnv = process.env): Promise<ContainerEngineReport[]> {
  return Promise.all(
    containerEngines.map(async (name): Promise<ContainerEngineReport> => {
      if (!onPath(name, env)) return { engine: name, found: false, usable: false, version: null, detail: 'not found on PATH' };
      const engine = containerEngine(name);
      const [version, ready] = await Promise.all([
        run(name, engine.versionArgs, VERSION_TIMEOUT_MS, env),
        engine.readyArgs === null ? null : run(name, engine.readyArgs, READY_TIMEOUT_MS, env),
      ]);
      const said = version.code === 0 ? version.stdout.trim().split('\n')[0]! : null;
      const named = said ?? `found, but \`${name} ${engine.versionArgs.join(' ')}\` failed (${version.said})`;
      if (ready === null)
        return { engine: name, found: true, usable: version.code === 0, version: said, detail: `${named}; runs without a daemon (not checked further)` };
      if (ready.code !== 0)
        return {
          engine: name,
          found: true,
          usable: false,
          version: said,
          detail: `${named}; cannot run containers: \`${name} ${engine.readyArgs!.join(' ')}\` failed (${ready.said})`,
        };
      return { engine: name, found: true, usable: true, version: said, detail: `${named}; runs containers (${name} ${engine.readyArgs![0]} answered)` };
    }),
  );
}

function onPath(program: string, env: NodeJS.ProcessEnv): boolean {
  for (const folder of (env.PATH ?? '').split(delimiter)) {
    if (!folder) continue;
    try {
      accessSync(join(folder, program), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

function firstEngineFound(env: NodeJS.ProcessEnv): ContainerEngineName | null {
  return containerEngines.find((name) => onPath(name, env)) ?? null;
}

interface Ran {
  code: number;
  stdout: string;
  said: string;
}

function run(program: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve) => {
    // SIGKILL at the limit: an engine stuck on a lock or a dead daemon may ignore SIGTERM.
    execFile(program, args, { env, timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      const timedOut = error !== null && (error as { killed?: boolean }).killed === true;
      // Engines print retries first (podman: three tries at a registry); the last line is the verdict.
      const said = timedOut ? `no answer after ${timeoutMs / 1000}s` : (stderr.trim() || stdout.trim() || `exit code ${code}`).split('\n').at(-1)!.trim();
      resolve({ code, stdout, said });
    });
  });
}

/**
 * An image's identity where the run is planned: the engine's content-addressed id, or for an
 * image file (apptainer/singularity .sif) its path, size and modification time.
 */
async function imageIdentity(plan: ContainerPlan, image: string, locate: Locate, env: NodeJS.ProcessEnv): Promise<string | null> {
  const engine = containerEngine(plan.engine);
  if (!engine.detached) {
    if (!image.includes('://') && existsSync(image)) {
      const stat = statSync(image);
      return `${image}:${stat.size}:${Math.round(stat.mtimeMs)}`;
    }
    if (plan.pull === 'never' && !image.includes('://')) {
      throw new JobFileError(locate('container.image'), `the image file ${image} does not exist`, 'build or copy it there, or fix the path');
    }
    return null;
  }
  const inspect = () => run(plan.engine, engine.imageIdArgs(image), INSPECT_TIMEOUT_MS, env);
  let found = plan.pull === 'always' ? null : await inspect();
  if (found?.code === 0) return found.stdout.trim().split('\n')[0] || null;
  if (plan.pull === 'never') {
    throw new JobFileError(
      locate('container.image'),
      `the image ${image} is not present for ${plan.engine} on this machine and pull is never (${found?.said})`,
      `build or load it (e.g. ${plan.engine} build -t ${image} .), or set pull: missing`,
    );
  }
  const pulled = await run(plan.engine, engine.pullArgs(image), PULL_TIMEOUT_MS, env);
  if (pulled.code !== 0) {
    throw new JobFileError(
      locate('container.image'),
      `the image ${image} is not present for ${plan.engine} on this machine and pulling it failed (${pulled.said})`,
      `check the name and the registry, or build it here (${plan.engine} build -t ${image} .)`,
    );
  }
  found = await inspect();
  if (found.code !== 0)
    throw new JobFileError(locate('container.image'), `the image ${image} was pulled but ${plan.engine} cannot find it (${found.said})`, 'check the name');
  return found.stdout.trim().split('\n')[0] || null;
}
