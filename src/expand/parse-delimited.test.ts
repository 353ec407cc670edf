import { describe, expect, it } from 'vitest';
import { DelimitedSyntaxError, parseDelimited } from './parse-delimited.js';

const csv = (text: string) => parseDelimited(text, ',');
const fieldsOf = (text: string) => csv(text).map((row) => row.fields);

describe('parseDelimited as CSV', () => {
  it('splits plain rows and numbers them by line', () => {
    expect(csv('a,b\n1,2\n')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['1', '2'] },
    ]);
  });

  it('accepts a missing final newline and keeps empty fields', () => {
    expect(fieldsOf('a,,c\n,,')).toEqual([
      ['a', '', 'c'],
      ['', '', ''],
    ]);
  });

  it('reads quoted commas, doubled quotes and newlines, and keeps spaces', () => {
    expect(fieldsOf('"a,b","say ""hi""","two\nlines", x \n')).toEqual([['a,b', 'say "hi"', 'two\nlines', ' x ']]);
    expect(fieldsOf('"",""""')).toEqual([['', '"']]);
  });

  it('keeps a quote inside an unquoted field as data', () => {
    expect(fieldsOf('5" screen,x')).toEqual([['5" screen', 'x']]);
  });

  it('accepts CRLF, strips a BOM, and skips fully empty lines', () => {
    expect(csv('\uFEFFa,b\r\n\r\n1,2\r\n\n\n3,"x\r\ny"\r\n')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 3, fields: ['1', '2'] },
      { line: 6, fields: ['3', 'x\r\ny'] },
    ]);
  });

  it('numbers a row by the line it starts on when quoted newlines come before it', () => {
    expect(csv('h\n"1\n2\n3"\nnext\n').map((row) => row.line)).toEqual([1, 2, 5]);
  });

  it('reports a quoted field that never closes, at the line it opens', () => {
    expect(() => csv('a\nb\n"open\n\n')).toThrow(new DelimitedSyntaxError(3, 'a quoted field is never closed'));
  });

  it('reports text after a closing quote', () => {
    try {
      csv('a\n"x\ny"z,1\n');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(DelimitedSyntaxError);
      expect((error as DelimitedSyntaxError).line).toBe(3);
    }
  });
});

describe('parseDelimited as TSV', () => {
  it('splits on tabs without quoting, accepting CRLF, a BOM and empty lines', () => {
    expect(parseDelimited('\uFEFFa\tb\r\n\n"x,y"\t""\r\n\t\n', '\t')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 3, fields: ['"x,y"', '""'] },
      { line: 4, fields: ['', ''] },
    ]);
  });
});
