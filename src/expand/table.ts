import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { JobFileError } from '../errors.js';
import type { TaskSeed } from '../job/job-spec.js';
import type { ExpandContext } from './expand-context.js';
import { DelimitedSyntaxError, parseDelimited, type DelimitedRow } from './parse-delimited.js';
import { checkTaskNames } from './task-names.js';
import { columnToVariable, variableProblem } from './variable-names.js';

const TSV_EXTENSIONS: ReadonlySet<string> = new Set(['.tsv', '.tab']);

/** `table: file`: one task per row of a CSV or TSV file; columns become variables. */
export async function expandTable(file: string, ctx: ExpandContext): Promise<TaskSeed[]> {
  const where = ctx.locate('tasks.table');
  const tsv = TSV_EXTENSIONS.has(extname(file).toLowerCase());
  const [header, ...rows] = parseRows(await readTable(file, ctx), tsv ? '\t' : ',', file, ctx);
  if (header === undefined) {
    throw new JobFileError(where, `the table ${file} is empty`, 'add a header row and one row per task');
  }
  if (rows.length === 0) {
    throw new JobFileError(where, `the table ${file} has a header but no rows`, 'add one row per task');
  }

  const variables = headerVariables(header.fields, file, ctx);
  const fieldCount = variables.length;
  for (const row of rows) {
    if (row.fields.length !== fieldCount) {
      const count = row.fields.length;
      throw new JobFileError(
        where,
        `the row at ${file}:${row.line} has ${count} fields but the header has ${fieldCount}`,
        tsv ? `make every row have ${fieldCount} tab-separated fields` : `make every row have ${fieldCount} fields; quote fields that contain commas`,
      );
    }
  }

  const nameColumn = variables.includes('name') ? variables.indexOf('name') : 0;
  const nameOf = (row: DelimitedRow): string => row.fields[nameColumn] ?? '';
  checkTaskNames(
    rows.map((row) => ({ name: nameOf(row), origin: `${file}:${row.line}` })),
    where,
    'add a unique `name` column',
  );
  return rows.map((row, index) => {
    const vars: Record<string, string> = {};
    variables.forEach((variable, column) => {
      // `name` is the task's name, which the template already offers; TaskSeed.vars leaves it out.
      if (variable !== 'name') vars[variable] = row.fields[column] ?? '';
    });
    return { index, name: nameOf(row), vars, inputs: [], origin: `${file}:${row.line}` };
  });
}

async function readTable(file: string, ctx: ExpandContext): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const where = ctx.locate('tasks.table');
    if (code === 'ENOENT') throw new JobFileError(where, `the table ${file} does not exist`, 'check the path', { cause: error });
    if (code === 'EISDIR') throw new JobFileError(where, `${file} is a folder, not a table`, 'check the path', { cause: error });
    throw new JobFileError(where, `the table ${file} cannot be read (${code ?? String(error)})`, 'make it readable by the user who runs fanout', {
      cause: error,
    });
  }
}

function parseRows(text: string, delimiter: ',' | '\t', file: string, ctx: ExpandContext): DelimitedRow[] {
  try {
    return parseDelimited(text, delimiter);
  } catch (error) {
    if (!(error instanceof DelimitedSyntaxError)) throw error;
    throw new JobFileError(
      ctx.locate('tasks.table'),
      `${file}:${error.line}: ${error.message}`,
      'fix the quoting: a field that starts with " ends with ", and a " inside it is written ""',
      { cause: error },
    );
  }
}

/** The variable each column becomes, in column order. */
function headerVariables(columns: readonly string[], file: string, ctx: ExpandContext): string[] {
  const columnOf = new Map<string, string>();
  return columns.map((column, i) => {
    const variable = columnToVariable(column);
    const label = `column ${i + 1} (${JSON.stringify(column)}) of ${file}`;
    const problem =
      variable === ''
        ? 'has no letters or digits to make a variable name from'
        : variableProblem(variable) !== null
          ? `becomes the reserved variable ${JSON.stringify(variable)}`
          : undefined;
    if (problem !== undefined) {
      throw new JobFileError(ctx.locate('tasks.table'), `${label} ${problem}`, 'rename the column');
    }
    const earlier = columnOf.get(variable);
    if (earlier !== undefined) {
      throw new JobFileError(ctx.locate('tasks.table'), `${label} and ${earlier} both give the variable ${JSON.stringify(variable)}`, 'rename one of the columns');
    }
    columnOf.set(variable, `column ${i + 1} (${JSON.stringify(column)})`);
    return variable;
  });
}
