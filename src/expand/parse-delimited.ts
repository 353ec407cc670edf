/** A parsed table row and the 1-based line it starts on (quoted fields may span lines). */
export interface DelimitedRow {
  line: number;
  fields: string[];
}

/** Text that is not valid CSV, at a 1-based line. */
export class DelimitedSyntaxError extends Error {
  override name = 'DelimitedSyntaxError';
  constructor(
    readonly line: number,
    problem: string,
  ) {
    super(problem);
  }
}

const BOM = '\uFEFF';

/**
 * Parses CSV (RFC 4180: quoted fields may hold commas, doubled quotes and newlines) or TSV (split on
 * tabs, no quoting). Both accept CRLF, drop a UTF-8 BOM and skip fully empty lines.
 */
export function parseDelimited(text: string, delimiter: ',' | '\t'): DelimitedRow[] {
  const body = text.startsWith(BOM) ? text.slice(BOM.length) : text;
  return delimiter === '\t' ? parseTsv(body) : parseCsv(body);
}

function parseTsv(text: string): DelimitedRow[] {
  const rows: DelimitedRow[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line !== '') rows.push({ line: i + 1, fields: line.split('\t') });
  });
  return rows;
}

function parseCsv(text: string): DelimitedRow[] {
  const rows: DelimitedRow[] = [];
  let pos = 0;
  let line = 1;

  /** Length of the line break at `at` (LF or CRLF), or 0 when there is none. */
  const lineBreak = (at: number): number => (text[at] === '\n' ? 1 : text[at] === '\r' && text[at + 1] === '\n' ? 2 : 0);

  const quotedField = (): string => {
    const startLine = line;
    let value = '';
    pos += 1; // the opening quote
    for (;;) {
      const close = text.indexOf('"', pos);
      if (close === -1) {
        throw new DelimitedSyntaxError(startLine, 'a quoted field is never closed');
      }
      const part = text.slice(pos, close);
      line += part.split('\n').length - 1;
      value += part;
      if (text[close + 1] === '"') {
        value += '"';
        pos = close + 2;
        continue;
      }
      pos = close + 1;
      if (pos < text.length && text[pos] !== ',' && lineBreak(pos) === 0) {
        throw new DelimitedSyntaxError(line, 'text follows the closing quote of a field');
      }
      return value;
    }
  };

  const plainField = (): string => {
    const start = pos;
    while (pos < text.length && text[pos] !== ',' && lineBreak(pos) === 0) pos += 1;
    return text.slice(start, pos);
  };

  while (pos < text.length) {
    const emptyLine = lineBreak(pos);
    if (emptyLine > 0) {
      pos += emptyLine;
      line += 1;
      continue;
    }
    const row: DelimitedRow = { line, fields: [] };
    for (;;) {
      row.fields.push(text[pos] === '"' ? quotedField() : plainField());
      if (text[pos] !== ',') break;
      pos += 1;
    }
    rows.push(row);
    const end = lineBreak(pos);
    pos += end;
    if (end > 0) line += 1;
  }
  return rows;
}
