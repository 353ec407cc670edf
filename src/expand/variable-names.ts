/** Names the task template provides itself; a source variable with one of these would be shadowed. */
const RESERVED_VARIABLES: ReadonlySet<string> = new Set(['index', 'out', 'outdir', 'outputs', 'manifest']);

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Turns a table column header into a variable name: `Sample ID` → `Sample_ID`, `2nd` → `_2nd`. */
export function columnToVariable(column: string): string {
  const joined = column.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  return /^[0-9]/.test(joined) ? `_${joined}` : joined;
}

/** Why `name` cannot be a variable, or null when it can. */
export function variableProblem(name: string): string | null {
  if (name === '') return 'is empty';
  if (!IDENTIFIER.test(name)) return 'must be letters, digits and _, not starting with a digit';
  if (RESERVED_VARIABLES.has(name)) return 'is reserved for a built-in variable';
  return null;
}
