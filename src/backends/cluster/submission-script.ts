import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { joinWords, type ShellWord } from '../../container/container-engines.js';
import { parseTemplate, renderTemplate, TemplateSyntaxError, type TemplateValue } from '../../job/template.js';
import type { ArrayScript, Scheduler } from './scheduler.js';
import { ceilMebibytes } from '../../job/units.js';

/**
 * The submission script of one array job, from a template users can see (`fanout render
 * --backend slurm`) and replace: a `slurm.sh` or `sge.sh` in a template folder overrides the
 * built-in one. Placeholders use the job file's syntax; `| raw` inserts text as is.
 */

const BUILT_IN: Record<Scheduler['name'], string> = {
  slurm: '#!/bin/sh\n{{ directives | raw }}\n\n{{ run_element | raw }}\n',
  sge: '#!/bin/sh\n{{ directives | raw }}\n\n{{ run_element | raw }}\n',
};

const TEMPLATE_VARIABLES = ['directives', 'run_element', 'job_name', 'elements', 'cpus', 'memory_mb', 'time_seconds', 'time_minutes', 'element_log'] as const;

export interface ScriptTemplate {
  /** Where it came from: a file path, or "built-in". */
  origin: string;
  text: string;
}

export function findTemplate(scheduler: Scheduler['name'], templateDirs: readonly string[]): ScriptTemplate {
  for (const dir of templateDirs) {
    const path = join(dir, `${scheduler}.sh`);
    if (existsSync(path)) return { origin: path, text: readFileSync(path, 'utf8') };
  }
  return { origin: 'built-in', text: BUILT_IN[scheduler] };
}

export interface ScriptInputs {
  scheduler: Scheduler;
  template: ScriptTemplate;
  array: ArrayScript;
  runner: string;
  runDir: string;
  elementList: string;
  /** Runs the element runner's command line in a container (`container.per: element`); absent: as it is. */
  enclose?: (argv: [string, ...ShellWord[]]) => string;
}

export function renderSubmissionScript(inputs: ScriptInputs): string {
  const { scheduler, template, array } = inputs;
  let parsed;
  try {
    parsed = parseTemplate(template.text);
  } catch (error) {
    if (error instanceof TemplateSyntaxError) throw new UserError(`submission template ${template.origin}: ${error.message}`, 'fix the template');
    throw error;
  }
  const unknown = parsed.variables.find((name) => !(TEMPLATE_VARIABLES as readonly string[]).includes(name));
  if (unknown !== undefined) {
    throw new UserError(`submission template ${template.origin} names {{ ${unknown} }}, which fanout does not provide`, `use only: ${TEMPLATE_VARIABLES.join(', ')}`);
  }
  const line = `"$((${scheduler.elementVariable} - ${scheduler.firstElement} + 1))"`;
  const runElement: [string, ...ShellWord[]] = ['/bin/sh', inputs.runner, inputs.runDir, inputs.elementList, { shell: line }];
  const { resources } = array;
  const values: Record<string, TemplateValue> = {
    directives: scheduler.directives(array).join('\n'),
    run_element: `exec ${inputs.enclose ? inputs.enclose(runElement) : joinWords(runElement)}`,
    job_name: array.jobName,
    elements: String(array.elements),
    cpus: String(resources.cpus),
    memory_mb: resources.memory === null ? '' : String(ceilMebibytes(resources.memory)),
    time_seconds: resources.timeMs === null ? '' : String(Math.ceil(resources.timeMs / 1000)),
    time_minutes: resources.timeMs === null ? '' : String(Math.ceil(resources.timeMs / 60_000)),
    element_log: array.elementLogPattern,
  };
  return renderTemplate(parsed, values);
}
