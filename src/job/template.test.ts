import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellQuote } from './shell-quote.js';
import { parseTemplate, renderTemplate, TemplateSyntaxError } from './template.js';

describe('templates', () => {
  it('quotes variables and inserts raw ones verbatim', () => {
    const template = parseTemplate('cat {{ file }} {{flags|raw}} > {{ out }}/x');
    expect(template.variables).toEqual(['file', 'flags', 'out']);
    expect(renderTemplate(template, { file: 'a b.txt', flags: '-n -v', out: '/o' })).toBe("cat 'a b.txt' -n -v > /o/x");
  });

  it('turns a list into one quoted word per element', () => {
    expect(renderTemplate(parseTemplate('ls {{ outputs }}'), { outputs: ['/a', "/b c'd"] })).toBe(`ls /a '/b c'\\''d'`);
  });

  it('refuses unclosed placeholders and unknown filters, saying where', () => {
    expect(() => parseTemplate('echo {{ x')).toThrow(TemplateSyntaxError);
    expect(() => parseTemplate('echo {{ x | upper }}')).toThrow(/unknown filter "upper"/);
    expect(() => parseTemplate('echo {{ 1x }}')).toThrow(/not a placeholder/);
  });
});

describe('shellQuote', () => {
  const hostile = ['plain', 'with space', "it's", 'new\nline', '$(id)', '`id`', '', '-n', 'a"b', '\\', '*', '~'];
  it.each(hostile)('makes %j exactly one word that the shell reads back unchanged', (value) => {
    const echoed = execFileSync('/bin/sh', ['-c', `printf '%s' ${shellQuote(value)}`]).toString();
    expect(echoed).toBe(value);
  });
});
