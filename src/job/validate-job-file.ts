import type { z } from 'zod';
import { JobFileError, UserError } from '../errors.js';
import { jobFileSchema, taskSourceKeys, type JobFile } from './job-schema.js';
import { fieldName, type Locate } from './field-location.js';
import { resourceFix } from './resource-setting.js';

/**
 * Check parsed job-file data against the schema and the rules a schema cannot say
 * (exactly one of command/script, exactly one task source). The first problem is thrown as one
 * JobFileError naming the field and the fix.
 */
export function validateJobFile(data: unknown, locate: Locate): JobFile {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new JobFileError(locate(''), 'a job file must be a map of fields', 'start with `command:` and `tasks:`');
  }
  const parsed = jobFileSchema.safeParse(data, { reportInput: true });
  if (!parsed.success) throw issueToError(parsed.error.issues[0]!, locate);
  const job = parsed.data;

  if (job.command !== undefined && job.script !== undefined) {
    throw new JobFileError(locate('script'), 'both command and script are given', 'keep one of them');
  }
  if (job.command === undefined && job.script === undefined) {
    throw new JobFileError(locate(''), 'no command', 'add `command:` (one line) or `script:` (several lines)');
  }
  const sources = taskSourceKeys.filter((key) => job.tasks[key] !== undefined);
  if (sources.length !== 1) {
    throw new JobFileError(
      locate(sources.length ? `tasks.${sources[1]}` : 'tasks'),
      sources.length ? `tasks has both ${sources[0]} and ${sources[1]}` : 'tasks names no source of tasks',
      sources.length ? 'keep exactly one source' : `add one of: ${taskSourceKeys.join(', ')}`,
    );
  }
  const chunks = job.tasks.chunks;
  if (chunks && (chunks.count === undefined) === (chunks.size === undefined)) {
    throw new JobFileError(locate('tasks.chunks'), 'chunks needs exactly one of count and size', 'e.g. `count: 8` or `size: 10MB`');
  }
  if (job.notify && job.notify.webhook === undefined && job.notify.command === undefined) {
    throw new JobFileError(locate('notify'), 'names neither a webhook nor a command', 'add `webhook: https://...` or `command: ...` (or both)');
  }
  return job;
}

export function issueToError(issue: z.core.$ZodIssue, locate: Locate): UserError {
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const field = fieldName([...issue.path, key]);
    const allowed = allowedKeys(issue.path);
    const suggestion = allowed && closest(key, allowed);
    return new JobFileError(
      locate(field),
      `unknown field "${key}"`,
      suggestion ? `did you mean "${suggestion}"?` : allowed ? `allowed here: ${allowed.join(', ')}` : 'remove it',
    );
  }
  const field = fieldName(issue.path);
  return new JobFileError(locate(field), describeIssue(issue), fixFor(field));
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? 'is required' : `must be ${article(issue.expected)}, not ${typeName(issue.input)}`;
    case 'too_small':
      return issue.origin === 'array' ? `needs at least ${issue.minimum} entr${issue.minimum === 1 ? 'y' : 'ies'}` : `must be at least ${issue.minimum}`;
    case 'too_big':
      return issue.origin === 'array' ? `has more than ${issue.maximum} entries` : `must be at most ${issue.maximum}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      return 'has characters that are not allowed';
    case 'invalid_union': {
      const field = fieldName(issue.path);
      if (field === 'resources.cpus') return `must be a whole number or text such as "{{ threads }}", not ${typeName(issue.input)}`;
      return UNION_SHAPES[field] ?? 'must be a value (text, number, true/false) or a map of values';
    }
    default:
      return issue.message;
  }
}

/** What a field that takes one of several shapes takes, where it is not a value or a map of values. */
const UNION_SHAPES: Record<string, string> = {
  setup: 'must be a shell line or a list of shell lines',
};

const FIXES: Record<string, string> = {
  setup: 'e.g. `setup: module load samtools/1.17`, or a list of such lines',
  name: 'use letters, digits, ".", "_" and "-", starting with a letter or digit',
  'resources.cpus': resourceFix('cpus'),
  'resources.memory': resourceFix('memory'),
  'resources.time': resourceFix('time'),
  'tasks.chunks.size': 'write a size with a unit, e.g. 10MB',
  'notify.webhook': 'write an http:// or https:// URL',
  'notify.command': 'write a shell command that reads the JSON summary on stdin',
};

function fixFor(field: string): string | undefined {
  return FIXES[field];
}

function allowedKeys(path: ReadonlyArray<PropertyKey>): string[] | undefined {
  let schema: z.ZodType = jobFileSchema;
  for (const key of path) {
    const shape = objectShape(schema);
    if (!shape || typeof key !== 'string' || !(key in shape)) return undefined;
    schema = shape[key]!;
  }
  const shape = objectShape(schema);
  return shape ? Object.keys(shape).filter((k) => k !== '$schema') : undefined;
}

function objectShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  let current: unknown = schema;
  // Optional wrappers hide the object; unwrap them to read its fields.
  while (current && typeof current === 'object' && 'unwrap' in current && typeof current.unwrap === 'function') {
    current = (current as { unwrap(): unknown }).unwrap();
  }
  return current && typeof current === 'object' && 'shape' in current ? (current.shape as Record<string, z.ZodType>) : undefined;
}

export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}

function article(type: string): string {
  return type === 'int' ? 'a whole number' : `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type === 'record' ? 'map' : type}`;
}

function typeName(value: unknown): string {
  if (value === null) return 'empty';
  // Only jobs built in code (the API) can hold these; JSON.stringify would not describe them.
  if (typeof value === 'function' || typeof value === 'bigint' || typeof value === 'symbol' || value === undefined) return `a ${typeof value}`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return `${typeof value} ${JSON.stringify(value)}`;
}
