import { shellQuote } from './shell-quote.js';

/**
 * Command templates: `{{ name }}` inserts a variable as one shell-quoted word, `{{ name | raw }}`
 * inserts it verbatim. A list value (such as `outputs`) becomes one quoted word per element.
 */

export type TemplateValue = string | readonly string[];

type Part = string | { variable: string; raw: boolean };

export interface Template {
  readonly source: string;
  readonly parts: readonly Part[];
  /** Every variable the template names, in order of first use. */
  readonly variables: readonly string[];
}

/** Why a template cannot be parsed; `offset` is where in the template text. */
export class TemplateSyntaxError extends Error {
  override name = 'TemplateSyntaxError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*([A-Za-z_]+)\s*)?\}\}/y;

export function parseTemplate(source: string): Template {
  const parts: Part[] = [];
  const variables: string[] = [];
  let literal = '';
  let at = 0;
  while (at < source.length) {
    const open = source.indexOf('{{', at);
    if (open < 0) {
      literal += source.slice(at);
      break;
    }
    literal += source.slice(at, open);
    PLACEHOLDER.lastIndex = open;
    const match = PLACEHOLDER.exec(source);
    if (!match) {
      const close = source.indexOf('}}', open);
      const text = close < 0 ? source.slice(open, open + 20) : source.slice(open, close + 2);
      throw new TemplateSyntaxError(close < 0 ? `unclosed placeholder "${text}"` : `"${text}" is not a placeholder: write {{ name }} or {{ name | raw }}`, open);
    }
    const [whole, variable, filter] = match as unknown as [string, string, string | undefined];
    if (filter !== undefined && filter !== 'raw') {
      throw new TemplateSyntaxError(`unknown filter "${filter}" in "${whole}": the only filter is raw`, open);
    }
    if (literal) parts.push(literal);
    literal = '';
    parts.push({ variable, raw: filter === 'raw' });
    if (!variables.includes(variable)) variables.push(variable);
    at = open + whole.length;
  }
  if (literal) parts.push(literal);
  return { source, parts, variables };
}

/**
 * Render with every variable present; callers check `variables` against what they have first.
 * Values are shell-quoted for command templates; `quote: false` for values that are not shell
 * (an image name, a mount path).
 */
export function renderTemplate(template: Template, values: Readonly<Record<string, TemplateValue>>, options: { quote: boolean } = { quote: true }): string {
  let out = '';
  for (const part of template.parts) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const value = values[part.variable];
    if (value === undefined) throw new Error(`template variable ${part.variable} has no value`);
    if (typeof value === 'string') out += part.raw || !options.quote ? value : shellQuote(value);
    else out += value.map((word) => (part.raw || !options.quote ? word : shellQuote(word))).join(' ');
  }
  return out;
}
