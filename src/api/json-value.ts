/**
 * Items of a function map travel to their worker process as JSON, and return values come back as
 * JSON. JSON.stringify silently drops or changes what it cannot say (undefined, functions, NaN,
 * Dates, Maps) and throws on BigInt and cycles; so a value is checked first, and the first part
 * that would not come back the same is named.
 */

/** Where a value stops being JSON and why, or null when it survives a JSON round trip. */
export interface JsonProblem {
  /** Path inside the value, e.g. `.sample.reads[2]`; empty for the value itself. */
  path: string;
  /** What is there, e.g. `a function`, `a cycle back to .sample`. */
  what: string;
}

export function jsonProblem(value: unknown): JsonProblem | null {
  return check(value, '', new Map());
}

/** One line naming the problem: `item 3 .when is a Date, which JSON cannot carry`. */
export function describeJsonProblem(subject: string, problem: JsonProblem): string {
  return `${subject}${problem.path ? ` ${problem.path}` : ''} is ${problem.what}, which JSON cannot carry`;
}

function check(value: unknown, path: string, ancestors: Map<object, string>): JsonProblem | null {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return null;
    case 'number':
      return Number.isFinite(value) ? null : { path, what: String(value) };
    case 'undefined':
      return { path, what: 'undefined' };
    case 'function':
      return { path, what: 'a function' };
    case 'bigint':
      return { path, what: 'a BigInt' };
    case 'symbol':
      return { path, what: 'a symbol' };
  }
  if (value === null) return null;
  const object = value as object;
  const seenAt = ancestors.get(object);
  if (seenAt !== undefined) return { path, what: `a cycle back to ${seenAt || 'the value itself'}` };
  const prototype = Object.getPrototypeOf(object) as { constructor?: { name?: string } } | null;
  if (!Array.isArray(object) && prototype !== Object.prototype && prototype !== null) {
    return { path, what: `a ${prototype?.constructor?.name ?? 'non-plain object'}` };
  }
  ancestors.set(object, path);
  try {
    if (Array.isArray(object)) {
      for (let index = 0; index < object.length; index++) {
        const found = check(object[index], `${path}[${index}]`, ancestors);
        if (found) return found;
      }
      return null;
    }
    for (const [key, entry] of Object.entries(object)) {
      const found = check(entry, /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`, ancestors);
      if (found) return found;
    }
    return null;
  } finally {
    // Shared (not cyclic) references are fine: only the current chain counts as ancestors.
    ancestors.delete(object);
  }
}
