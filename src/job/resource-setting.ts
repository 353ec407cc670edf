import {
  describeQuantity,
  describeUnits,
  isDimension,
  evaluateResourceExpression,
  parseResourceExpression,
  ResourceExpressionError,
  sizeVariables,
  type Dimension,
  type ResourceField,
} from './resource-expression.js';
import { parseDuration, parseMemory } from './units.js';

/**
 * What `resources.cpus`, `resources.memory` and `resources.time` accept: a plain value (`4`,
 * `4GB`, `2h`), an expression (`2GB + 3 * size(file)`, see resource-expression.ts), or a
 * template over the task's variables (`{{ mem }}`) that renders to either.
 */

export const RESOURCE_FIELDS: readonly ResourceField[] = ['cpus', 'memory', 'time'];

/** What each field is and how to write one, for every message about it. */
const FIELD: Record<ResourceField, { dimension: Dimension; notA: string; fix: string; example: string }> = {
  cpus: { dimension: 'number', notA: 'is not a whole number of cpus', fix: 'write a whole number, e.g. 4', example: '1 + size(file) / 10GB' },
  memory: { dimension: 'size', notA: 'is not a size', fix: 'write a size with a unit, e.g. 512MB or 4GB', example: '2GB + 3 * size(file)' },
  time: { dimension: 'duration', notA: 'is not a duration', fix: 'write a duration with a unit, e.g. 90s, 30m or 2h', example: '10m + 2s * size(chunk) / 1MB' },
};

/** The fix for a bad value of `field`, e.g. "write a size with a unit, e.g. 512MB or 4GB". */
export function resourceFix(field: ResourceField): string {
  return FIELD[field].fix;
}

/** A field as the job file writes it, once compiled: one value for every task, or text each task computes. */
export type CompiledResource = { constant: number } | { perTask: string };

/** Throws ResourceExpressionError when the text can never be a value of `field`. */
export function compileResource(field: ResourceField, written: string | number): CompiledResource {
  if (typeof written === 'number') return { constant: written };
  // A template is rendered per task first: only then is its text known.
  if (written.includes('{{')) return { perTask: written };
  if (!looksLikeExpression(written)) return { constant: resourceValue(field, written, noSizes) };
  const expression = parseResourceExpression(written, field);
  if (sizeVariables(expression).length > 0) return { perTask: written };
  return { constant: resourceValue(field, written, noSizes) };
}

function noSizes(): never {
  throw new Error('an expression without size() read a size');
}

/**
 * The value of `field` that `text` (a rendered template, or the field as written) asks for:
 * cpus a whole number, memory in bytes, time in ms. `sizeOf` gives the bytes of what a variable
 * names. Throws ResourceExpressionError naming the text and the fix.
 */
export function resourceValue(field: ResourceField, text: string, sizeOf: (variable: string) => number): number {
  const plain = plainValue(field, text);
  if (plain !== null) return plain;
  const { dimension, notA, fix, example } = FIELD[field];
  if (!looksLikeExpression(text)) throw new ResourceExpressionError(`${JSON.stringify(text)} ${notA}`, fix);
  const result = evaluateResourceExpression(parseResourceExpression(text, field), text, sizeOf);
  if (!isDimension(result, dimension)) {
    throw new ResourceExpressionError(`${JSON.stringify(text)} comes to ${describeUnits(result)}, not a ${dimension}`, `make it a ${dimension}, e.g. ${example}`);
  }
  if (!Number.isFinite(result.value) || result.value <= 0) {
    throw new ResourceExpressionError(`${JSON.stringify(text)} comes to ${describeQuantity(result)}`, `it must come to more than 0, e.g. ${example}`);
  }
  // Schedulers take whole cpus, bytes and milliseconds; rounding up never gives a task less than asked.
  return Math.ceil(result.value);
}

/** The plain (non-expression) forms each field has always taken: `4`, `4GB`, `2h`, `1-00:00:00`. */
function plainValue(field: ResourceField, text: string): number | null {
  switch (field) {
    case 'cpus':
      return /^\s*\d+\s*$/.test(text) && Number(text) >= 1 ? Number(text) : null;
    case 'memory':
      return parseMemory(text);
    case 'time':
      return parseDuration(text);
  }
}

/**
 * Arithmetic or a call, as opposed to a plain value gone wrong (`lots`), which keeps the short
 * message it always had. A leading `-` alone (`-5GB`) reads as a bad value, not as arithmetic.
 */
function looksLikeExpression(text: string): boolean {
  return /[+*/()]|\S\s*-/.test(text);
}
