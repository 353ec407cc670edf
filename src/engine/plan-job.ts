import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { JobFileError } from '../errors.js';
import { expandTasks } from '../expand/expand-tasks.js';
import type { JobSpec, Resources, TaskSeed } from '../job/job-spec.js';
import { parseResourceExpression, ResourceExpressionError, sizeVariables, type ResourceField } from '../job/resource-expression.js';
import { RESOURCE_FIELDS, resourceValue } from '../job/resource-setting.js';
import { isObjectStoreUri } from '../storage/location.js';
import { containerKey, imageIdentityOf, planContainer, type ImageIdentity } from '../container/container-plan.js';
import { pathSize } from './path-size.js';
import type { Locate } from '../job/field-location.js';
import { parseTemplate, renderTemplate, TemplateSyntaxError, type Template, type TemplateValue } from '../job/template.js';
import { formatBytes } from '../job/units.js';
import type { Backend, Capacity } from '../backends/backend.js';
import type { Dispatch, NewTask } from '../store/records.js';
import { closest } from '../job/validate-job-file.js';
import { cacheKey } from './cache-key.js';
import { finalOut } from './home-layout.js';
import { renderSoftwareEnvironment, withSetup } from './software-environment.js';

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
  /** Its own cpus, memory and time: the job's, or what its variables and inputs made of `perTaskResources`. */
  resources: Resources;
}

/** Variables every task has besides its own, and that gather templates have. */
const TASK_BUILTINS = ['index', 'name', 'out', 'outdir', 'jobdir'] as const;
/** What a resource template may name: not `out`, which differs per attempt while resources escalate from the first. */
const RESOURCE_BUILTINS = TASK_BUILTINS.filter((name) => name !== 'out');
const GATHER_BUILTINS = ['outputs', 'manifest', 'outdir', 'jobdir'] as const;
/** What `setup:` and `env:` may name besides the job's variables when the job has a gather: what tasks and the gather both have. */
const ENVIRONMENT_GATHER_BUILTINS = ['outdir', 'jobdir'] as const;

/** The value `{{ out }}` takes in a cache key: the real one differs per attempt. */
const OUT_PLACEHOLDER = '\0out\0';

export async function planJob(
  spec: JobSpec,
  options: { locate: Locate; chunkDir: string; backend: Pick<Backend, 'name' | 'capacity' | 'dispatch'> },
): Promise<PlannedJob> {
  const { locate } = options;
  const capacity = options.backend.capacity();
  // The job-wide values first, before any work on the tasks; fields that differ per task are checked per task below.
  checkResources(spec.resources, capacity, locate, null);
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
  if (first) {
    const known = [...Object.keys(spec.vars), ...Object.keys(first.vars), ...TASK_BUILTINS];
    checkVariables(command, known, locate, spec.commandField, 'a task');
    checkSoftwareEnvironment(spec, known, gather !== null, locate);
  }
  const resourceTemplates = perTaskResourceTemplates(spec, [...Object.keys(spec.vars), ...Object.keys(first?.vars ?? {}), ...RESOURCE_BUILTINS], locate);

  const valuesOf = (seed: TaskSeed) => plannedValues(spec, { ...seed, vars: { ...spec.vars, ...seed.vars } });
  // Lazily: a job without a container renders nothing more for it.
  const containerPlan = await planContainer(
    spec,
    (function* () {
      for (const seed of seeds) yield { name: seed.name, values: valuesOf(seed) };
    })(),
    locate,
  );
  const plan = createHash('sha256');
  const sourceField = locate(`tasks.${spec.tasks.kind}`);
  const tasks = seeds.map((seed): PlannedTask => {
    const vars = { ...spec.vars, ...seed.vars };
    const values = valuesOf(seed);
    const environment = renderSoftwareEnvironment(spec, values);
    const rendered = withSetup(environment.setup, renderTemplate(command, values)) + containerKey(containerPlan, values);
    const resources = taskResources(spec, resourceTemplates, values, seed, locate);
    if (resourceTemplates.length > 0) checkResources(resources, capacity, locate, seed);
    const task = {
      index: seed.index,
      name: seed.name,
      vars,
      cacheKey: cacheKey(rendered, environment.env, vars, seed.inputs, sourceField),
      out: finalOut(spec.outdir, seed.name),
      resources,
    };
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
  return planned.tasks.map((task) => ({
    index: task.index,
    name: task.name,
    vars: task.vars,
    cacheKey: task.cacheKey,
    state: skipped.has(task.index) ? 'skipped' : 'pending',
    cpus: task.resources.cpus,
    memory: task.resources.memory,
    timeMs: task.resources.timeMs,
  }));
}

interface ResourceTemplate {
  field: ResourceField;
  template: Template;
}

/** The resource fields each task computes, parsed, their variables checked once for the whole job. */
function perTaskResourceTemplates(spec: JobSpec, known: string[], locate: Locate): ResourceTemplate[] {
  const written = spec.perTaskResources ?? {};
  return RESOURCE_FIELDS.flatMap((field) => {
    const source = written[field];
    if (source === undefined) return [];
    const where = `resources.${field}`;
    const template = parseOrThrow(source, locate, where);
    checkVariables(template, known, locate, where, 'a task');
    // Without placeholders the expression is the same for every task: its size() names are checked here, once.
    if (template.variables.length === 0) {
      for (const variable of sizeVariables(parseResourceExpression(source, field))) {
        if (!known.includes(variable)) {
          const similar = closest(variable, known);
          throw new JobFileError(
            locate(where),
            `size(${variable}) names a variable that a task does not have`,
            similar ? `did you mean size(${similar})?` : `known variables: ${[...new Set(known)].join(', ')}`,
          );
        }
      }
    }
    return [{ field, template }];
  });
}

/** A task's own resources: the job's, with each per-task field rendered over its values and computed. */
function taskResources(spec: JobSpec, templates: readonly ResourceTemplate[], values: Record<string, TemplateValue>, seed: TaskSeed, locate: Locate): Resources {
  const resources = { ...spec.resources };
  for (const { field, template } of templates) {
    const text = renderTemplate(template, values, { quote: false });
    let value: number;
    try {
      value = resourceValue(field, text, (variable) => sizeOfVariable(variable, values, spec.baseDir));
    } catch (error) {
      if (!(error instanceof ResourceExpressionError)) throw error;
      const rendered = template.variables.length > 0 ? ` (from ${JSON.stringify(template.source)})` : '';
      const fix = template.variables.length > 0 ? `${error.fix}, in ${template.variables.map((v) => `{{ ${v} }}`).join(' and ')} of that task` : error.fix;
      throw new JobFileError(locate(`resources.${field}`), `${describeTask(seed)}: ${error.message}${rendered}`, fix);
    }
    if (field === 'cpus') resources.cpus = value;
    else if (field === 'memory') resources.memory = value;
    else resources.timeMs = value;
  }
  return resources;
}

/** `task "s2" (from samples.csv:3)`: a task as messages name it. */
function describeTask(seed: Pick<TaskSeed, 'name' | 'origin'>): string {
  return `task ${JSON.stringify(seed.name)}${seed.origin === undefined ? '' : ` (from ${seed.origin})`}`;
}

/** `size(variable)`: the bytes of the file, or of everything in the folder, that the variable names. */
function sizeOfVariable(variable: string, values: Record<string, TemplateValue>, baseDir: string): number {
  const value = values[variable];
  if (typeof value !== 'string') {
    throw new ResourceExpressionError(`size(${variable}) names a variable that the task does not have`, 'name one of its variables, e.g. size(file)');
  }
  if (isObjectStoreUri(value)) {
    throw new ResourceExpressionError(`size(${variable}): ${value} is in object storage`, 'size() reads files and folders on this machine');
  }
  const bytes = pathSize(resolve(baseDir, value));
  if (bytes === null) {
    throw new ResourceExpressionError(
      `size(${variable}): ${JSON.stringify(value)} is not a file or folder that can be read`,
      'check the path, or name a variable that holds one',
    );
  }
  return bytes;
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

/**
 * `setup:` lines and `env:` values: templates over what the command can name. The gather runs
 * with them too, so in a job with a gather they may name only what it has as well: a job's
 * variables, `jobdir` and `outdir` (a task's own values have no meaning for the gather).
 */
function checkSoftwareEnvironment(spec: JobSpec, taskKnown: string[], hasGather: boolean, locate: Locate): void {
  const fields: Array<[string, string]> = [
    ...(spec.setup ?? []).map((line, i, all): [string, string] => [all.length === 1 ? 'setup' : `setup[${i}]`, line]),
    ...Object.entries(spec.env ?? {}).map(([name, value]): [string, string] => [`env.${name}`, value]),
  ];
  const gatherKnown = [...Object.keys(spec.vars), ...ENVIRONMENT_GATHER_BUILTINS];
  for (const [field, source] of fields) {
    const template = parseOrThrow(source, locate, field);
    checkVariables(template, taskKnown, locate, field, 'a task');
    const taskOnly = hasGather ? template.variables.find((variable) => !gatherKnown.includes(variable)) : undefined;
    if (taskOnly !== undefined) {
      throw new JobFileError(
        locate(field),
        `{{ ${taskOnly} }} is a task's own value, but the gather runs with the same setup: and env: and has none`,
        `name only vars, jobdir or outdir in setup: and env:, and put what differs per task in the command (each task also has $FANOUT_${taskOnly.toUpperCase()})`,
      );
    }
  }
}

/** `task` names the task when resources differ per task; null when every task asks for the same. */
function checkResources(resources: Resources, capacity: Capacity, locate: Locate, task: TaskSeed | null): void {
  const { cpus, memory } = resources;
  const where = capacity.shared ? 'this machine has' : 'the largest node the cluster offers this job has';
  const who = task === null ? '' : `${describeTask(task)} `;
  if (cpus > capacity.cpus) {
    throw new JobFileError(locate('resources.cpus'), `${who}asks for ${cpus} cpus but ${where} ${capacity.cpus}`, `ask for at most ${capacity.cpus}`);
  }
  if (memory !== null && memory > capacity.memory) {
    throw new JobFileError(
      locate('resources.memory'),
      `${who}asks for ${formatBytes(memory)} but ${where} ${formatBytes(capacity.memory)}`,
      `ask for at most ${formatBytes(capacity.memory)}`,
    );
  }
}
