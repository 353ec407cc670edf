import type { AttemptLaunch } from '../backends/backend.js';
import type { JobSpec } from '../job/job-spec.js';
import { renderTemplate, type Template, type TemplateValue } from '../job/template.js';
import type { TaskRecord } from '../store/records.js';
import { withOutputCheck } from './output-check.js';
import { inContainer } from '../container/container-command.js';
import { taskEnvironment, taskValues } from './plan-job.js';
import { renderSoftwareEnvironment, withSetup } from './software-environment.js';

/** Where one attempt of a task runs and writes. */
export interface AttemptPlaces {
  attemptDir: string;
  /** Where the command writes its outputs (`{{ out }}`). */
  stagingOut: string;
  /** Where those outputs are moved when the attempt succeeds. */
  finalOut: string;
}

/**
 * Render one attempt of a task: its command and environment. The coordinator and the pull
 * worker both launch tasks through it, so a task sees the same thing on every backend. `vars`
 * are the task's variables as this attempt sees them (a worker puts staged-in local copies of
 * object-storage inputs in place of their URIs).
 */
export function taskLaunch(spec: JobSpec, command: Template, identity: AttemptIdentity, places: AttemptPlaces): AttemptLaunch {
  const { launch, values } = bareTaskLaunch(spec, command, identity, places);
  const container = spec.containerPlan ?? null;
  return container === null ? launch : inContainer(launch, container, values, spec.baseDir);
}

interface AttemptIdentity {
  id: number;
  runId: number;
  task: Pick<TaskRecord, 'index' | 'name' | 'vars' | 'cpus' | 'memory' | 'timeMs'>;
  attempt: number;
  vars?: Record<string, string>;
}

/** The attempt as it runs on the host, before any container: what `fanout render` shows run in one. */
export function bareTaskLaunch(
  spec: JobSpec,
  command: Template,
  identity: AttemptIdentity,
  places: AttemptPlaces,
): { launch: AttemptLaunch; values: Record<string, TemplateValue> } {
  const { task } = identity;
  const values = taskValues(spec, identity.vars ?? task.vars, task.index, task.name, places.stagingOut);
  const environment = renderSoftwareEnvironment(spec, values);
  const launch: AttemptLaunch = {
    id: identity.id,
    attemptDir: places.attemptDir,
    cwd: places.attemptDir,
    stagingOut: places.stagingOut,
    finalOut: places.finalOut,
    cpus: task.cpus,
    memory: task.memory,
    timeMs: task.timeMs,
    command: withOutputCheck(withSetup(environment.setup, renderTemplate(command, values)), places.stagingOut, spec.outputs ?? []),
    // The job's `env:` first, so fanout's FANOUT_* variables always win (compileJob refuses them there too).
    env: {
      ...environment.env,
      ...taskEnvironment(values, {
        FANOUT_RUN: String(identity.runId),
        FANOUT_TASK: task.name,
        FANOUT_ATTEMPT: String(identity.attempt),
        FANOUT_OUT: places.stagingOut,
      }),
    },
  };
  return { launch, values };
}
