import type { DeclaredOutput } from '../job/job-spec.js';
import { shellQuote } from '../job/shell-quote.js';

/**
 * A tool can fail and still exit 0 (seqkit on a truncated gzip), leaving a hole nothing catches.
 * With `outputs:` declared, the attempt's command is the task's command run by its own shell,
 * then, only if it exited 0, a check of the declared outputs in `{{ out }}`. The check is part of
 * the attempt itself, so it holds wherever the attempt runs (the local launcher, a cluster node,
 * a pull worker) and before anything is committed: every runner commits outputs only after an
 * exit 0, and a missing output makes it exit 1 (reason `exit`) with a line on stderr naming it.
 */
export function withOutputCheck(command: string, out: string, outputs: readonly DeclaredOutput[]): string {
  if (outputs.length === 0) return command;
  const checks = outputs.map(({ path, nonEmpty }) => {
    // IFS empty: the pattern is expanded as a glob, never split on spaces; a glob that matches
    // nothing stays as written and is then not there.
    const each = nonEmpty ? `\n  for f in "$@"; do if [ -d "$f" ]; then [ -n "$(ls -A "$f")" ]; else [ -s "$f" ]; fi || { empty="$empty $p"; break; }; done` : '';
    return `p=${shellQuote(path)}; set -- $p\nif [ ! -e "$1" ] && [ ! -L "$1" ]; then missing="$missing $p"; else :${each}\nfi`;
  });
  return [
    `/bin/sh -c ${shellQuote(command)}`,
    'status=$?',
    '[ "$status" -eq 0 ] || exit "$status"',
    `cd ${shellQuote(out)} || exit 1`,
    "missing='' empty='' IFS=''",
    ...checks,
    '[ -z "$missing$empty" ] && exit 0',
    `[ -n "$missing" ] && echo "fanout: the command exited 0 but left no$missing in its output folder (declared in outputs:)" >&2`,
    `[ -n "$empty" ] && echo "fanout: the command exited 0 but left empty:$empty (declared non_empty in outputs:)" >&2`,
    'exit 1',
  ].join('\n');
}
