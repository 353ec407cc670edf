import { createHash } from 'node:crypto';
import { JobFileError } from '../errors.js';
import { expandTasks } from '../expand/expand-tasks.js';
import type { JobSpec, TaskSeed } from '../job/job-spec.js';
import { containerKey, imageIdentityOf, planContainer, type ImageIdentity } from '../container/container-plan.js';
import type { Locate } from '../job/field-location.js';
import { parseTemplate, renderTemplate, TemplateSyntaxError, type Template, type TemplateValue } from '../job/template.js';
import { formatBytes } from '../job/units.js';
import type { Backend, Capacity } from '../backends/backend.js';
import type { Dispatch, NewTask } from '../store/records.js';
import { cacheKey } from './cache-key.js';
import { finalOut } from './home-layout.js';

/** A job ready to run: its tasks with their variables and cache keys, every template checked. */
export interface PlannedJob {
  spec: JobSpec;
  command: Template;
  gather: Template | null;
  tasks: PlannedTask[];
  /** Changes when any task's name or cache key changes; a run resumes in place only under the same plan. */
  planKey: string;
  /** Its backend's name (the job file's, or the command line's; local by default). */
  backend: string;
  /** How its backend gets its attempts compute. */
  dispatch: Dispatch;
}

export interface PlannedTask {
  index: number;
  name: string;
  /** The job's `vars` overlaid with the task source's variables. */
  vars: Record<string, string>;
  cacheKey: string;
  /** Where the task's output is once committed. */
  out: string;
}

/** Variables every task has besides its own, and that gather templates have. */
const TASK_BUILTINS = ['index', 'name', 'out', 'outdir', 'jobdir'] as const;
const GATHER_BUILTINS = ['outputs', 'manifest', 'outdir', 'jobdir'] as const;

/** The value `{{ out }}` takes in a cache key: the real one differs per attempt. */
const OUT_PLACEHOLDER = '\0out\0';

export async function planJob(
  spec: JobSpec,
  options: { locate: Locate; chunkDir: string; backend: Pick<Backend, 'name' | 'capacity' | 'dispatch'> },
): Promise<PlannedJob> {
  const { locate } = options;
  checkResources(spec, options.backend.capacity(), locate);
  const command = parseOrThrow(spec.command, locate, spec.commandField);
  const gather = spec.gather === null ? null : parseOrThrow(spec.gather, locate, 'gather');
  if (gather) checkVariables(gather, [...Object.keys(spec.vars), ...GATHER_BUILTINS], locate, 'gather', 'a gather');
  if (gather && spec.gatherOn === 'local' && options.backend.dispatch === 'pull') {
    // No process of this run stays on this machine to run it: a worker claims the gather like a task.
    throw new JobFileError(
      locate('gather_on'),
      `local runs the gather where \`fanout run\` runs, but on the ${options.backend.name} backend no such process stays for it`,
      'remove `gather_on: local` (a worker runs the gather)',
    );
  }

  const seeds = await expandTasks(spec.tasks, { locate, chunkDir: options.chunkDir });
  const first = seeds[0];
  if (first) checkVariables(command, [...Object.keys(spec.vars), ...Object.keys(first.vars), ...TASK_BUILTINS], locate, spec.commandField, 'a task');

  const valuesOf = (seed: TaskSeed) => plannedValues(spec, { ...seed, vars: { ...spec.vars, ...seed.vars } });
  const containerPlan = await planContainer(
    spec,
    seeds.map((seed) => ({ name: seed.name, values: valuesOf(seed) })),
    locate,
  );
  const plan = createHash('sha256');
  const sourceField = locate(`tasks.${spec.tasks.kind}`);
  const tasks = seeds.map((seed): PlannedTask => {
    const vars = { ...spec.vars, ...seed.vars };
    const values = valuesOf(seed);
    const rendered = renderTemplate(command, values) + containerKey(containerPlan, values);
    const task = { index: seed.index, name: seed.name, vars, cacheKey: cacheKey(rendered, vars, seed.inputs, sourceField), out: finalOut(spec.outdir, seed.name) };
    plan.update(`${task.name}\0${task.cacheKey}\0`);
    return task;
  });
  return {
    spec: { ...spec, containerPlan },
    command,
    gather,
    tasks,
    planKey: plan.digest('hex').slice(0, 32),
    backend: options.backend.name,
    dispatch: options.backend.dispatch,
  };
}

/** A task's values as its plan rendered them (its image, its cache key): `{{ out }}` differs per attempt, so it is a placeholder. */
function plannedValues(spec: JobSpec, task: Pick<PlannedTask, 'vars' | 'index' | 'name'>): Record<string, TemplateValue> {
  return taskValues(spec, task.vars, task.index, task.name, OUT_PLACEHOLDER);
}

/**
 * The image a task of a run ran in, and its identity when the run was planned (what
 * `tasks --json` and the dashboard show); null when the run used no container. The same for all
 * its attempts in the run, and for the earlier attempts a skipped task reused: their cache key
 * holds the image's identity.
 */
export function taskImageIdentity(spec: JobSpec, task: Pick<PlannedTask, 'vars' | 'index' | 'name'>): ImageIdentity | null {
  return spec.containerPlan ? imageIdentityOf(spec.containerPlan, plannedValues(spec, task)) : null;
}

/** Every value a task's template can name. */
export function taskValues(spec: JobSpec, vars: Record<string, string>, index: number, name: string, out: string): Record<string, TemplateValue> {
  return { ...jobValues(spec, vars), index: String(index), name, out, outdir: spec.outdir };
}

/**
 * The values every template of a job can name: its variables and `jobdir`, the job file's folder
 * (tasks run in a folder of their own, so a path next to the job file is `{{ jobdir }}/...`).
 */
export function jobValues(spec: JobSpec, vars: Record<string, string> = spec.vars): Record<string, string> {
  return { ...vars, jobdir: spec.baseDir };
}

/** Every variable a task sees in its environment: FANOUT_<NAME> for each template value. */
export function taskEnvironment(values: Record<string, TemplateValue>, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    env[`FANOUT_${key.toUpperCase()}`] = typeof value === 'string' ? value : value.join('\n');
  }
  return Object.assign(env, extra);
}

export function newTasks(planned: PlannedJob, skipped: ReadonlySet<number>): NewTask[] {
  const { resources } = planned.spec;
  return planned.tasks.map((task) => ({
    index: task.index,
    name: task.name,
    vars: task.vars,
    cacheKey: task.cacheKey,
    state: skipped.has(task.index) ? 'skipped' : 'pending',
    cpus: resources.cpus,
    memory: resources.memory,
    timeMs: resources.timeMs,
  }));
}

function parseOrThrow(source: string, locate: Locate, field: string): Template {
  try {
    return parseTemplate(source);
  } catch (error) {
    if (error instanceof TemplateSyntaxError) throw new JobFileError(locate(field), error.message, 'write {{ name }} or {{ name | raw }}');
    throw error;
  }
}

function checkVariables(template: Template, known: string[], locate: Locate, field: string, what: string): void {
  for (const variable of template.variables) {
    if (known.includes(variable)) continue;
    const similar = known.find((k) => k.toLowerCase() === variable.toLowerCase() || k.startsWith(variable) || variable.startsWith(k));
    throw new JobFileError(
      locate(field),
      `{{ ${variable} }} names a variable that ${what} does not have`,
      similar ? `did you mean {{ ${similar} }}?` : `known variables: ${[...new Set(known)].join(', ')}`,
    );
  }
}

function checkResources(spec: JobSpec, capacity: Capacity, locate: Locate): void {
  const { cpus, memory } = spec.resources;
  const where = capacity.shared ? 'this machine has' : 'the largest node the cluster offers this job has';
  if (cpus > capacity.cpus) {
    throw new JobFileError(locate('resources.cpus'), `asks for ${cpus} cpus but ${where} ${capacity.cpus}`, `ask for at most ${capacity.cpus}`);
  }
  if (memory !== null && memory > capacity.memory) {
    throw new JobFileError(
      locate('resources.memory'),
      `asks for ${formatBytes(memory)} but ${where} ${formatBytes(capacity.memory)}`,
      `ask for at most ${formatBytes(capacity.memory)}`,
    );
  }
}
