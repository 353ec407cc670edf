import type { JobSpec } from '../job/job-spec.js';
import { shellQuote } from '../job/shell-quote.js';
import { parseTemplate, renderTemplate, type TemplateValue } from '../job/template.js';

/**
 * What a task's tools need around them (`setup:` and `env:`), rendered for one attempt or for the
 * gather. Both are templates over the same values as the command; planJob has checked them.
 */
export interface SoftwareEnvironment {
  /** Shell lines, each already rendered (values shell-quoted, as in the command). */
  setup: string[];
  /** Extra environment variables, each value rendered verbatim: no shell reads it. */
  env: Record<string, string>;
}

export function renderSoftwareEnvironment(spec: JobSpec, values: Readonly<Record<string, TemplateValue>>): SoftwareEnvironment {
  const setup = (spec.setup ?? []).map((line) => renderTemplate(parseTemplate(line), values));
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(spec.env ?? {})) env[name] = renderTemplate(parseTemplate(value), values, { quote: false });
  return { setup, env };
}

/**
 * The command preceded by its setup lines, in one shell, so what they change (`module load`, a
 * conda `activate`, an `export`) holds for the command. This is the whole of what the attempt
 * runs: an output check or a container wraps it as one. A setup line that exits non-zero ends
 * the attempt with its status before the command runs, saying so on stderr: a command run
 * without its module would fail later and less clearly, or succeed with the wrong tool. Within
 * one line only its last command's status counts (chain with `&&`), as in any shell script.
 */
export function withSetup(setup: readonly string[], command: string): string {
  if (setup.length === 0) return command;
  // The check goes on a line of its own: a setup line may end in a comment.
  const steps = setup.map(
    (line) =>
      `${line}\nfanout_setup_status=$?; [ "$fanout_setup_status" -eq 0 ] || { printf '%s\\n' ${shellQuote(`fanout: setup line ${excerpt(line)} exited `)}"$fanout_setup_status; the command did not run" >&2; exit "$fanout_setup_status"; }`,
  );
  return [...steps, command].join('\n');
}

/** A setup line as an error names it: its first line, cut short. */
function excerpt(line: string): string {
  const first = line.trim().split('\n')[0]!;
  return JSON.stringify(first.length > 80 || line.trim().includes('\n') ? `${first.slice(0, 80)}...` : first);
}
