import { JobFileError, type SourceLocation } from '../errors.js';

/** Names become output-folder names, so they stay well under the usual 255-byte file-name limit. */
const MAX_NAME_BYTES = 200;

/** Why `name` cannot name a task, or null when it can. Spaces, quotes and `$()` are just data. */
export function nameProblem(name: string): string | null {
  if (name === '') return 'is empty';
  if (name === '.' || name === '..') return 'is a special folder name';
  if (name.includes('/')) return 'contains "/"';
  if (name.includes('\0')) return 'contains a NUL character';
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_NAME_BYTES) return `is ${bytes} bytes long (the limit is ${MAX_NAME_BYTES})`;
  return null;
}

/** True when every name is valid and no two are equal. */
export function areUsableNames(names: readonly string[]): boolean {
  return names.every((name) => nameProblem(name) === null) && new Set(names).size === names.length;
}

export interface NameWithOrigin {
  name: string;
  /** Where the name came from, for messages: a file path, `item 3`, `samples.csv:7`. */
  origin: string;
}

/** How many offending names one message lists before summarising the rest. */
const LISTED = 3;

/** Throws a JobFileError at `location` when a name is invalid or two tasks share one. */
export function checkTaskNames(tasks: readonly NameWithOrigin[], location: SourceLocation, fix: string): void {
  const invalid = tasks.flatMap(({ name, origin }) => {
    const problem = nameProblem(name);
    return problem === null ? [] : [`${JSON.stringify(name)} (from ${origin}) ${problem}`];
  });
  if (invalid.length > 0) {
    throw new JobFileError(location, `the task name ${listed(invalid)}`, fix);
  }

  const firstOrigin = new Map<string, string>();
  const duplicates: string[] = [];
  for (const { name, origin } of tasks) {
    const earlier = firstOrigin.get(name);
    if (earlier === undefined) firstOrigin.set(name, origin);
    else duplicates.push(`${JSON.stringify(name)} comes from both ${earlier} and ${origin}`);
  }
  if (duplicates.length > 0) {
    throw new JobFileError(location, `the task name ${listed(duplicates)}`, fix);
  }
}

function listed(problems: readonly string[]): string {
  const shown = problems.slice(0, LISTED).join('; ');
  const more = problems.length - LISTED;
  return more > 0 ? `${shown}; and ${more} more` : shown;
}
