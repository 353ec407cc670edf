import { formatBytes, formatDuration, memoryUnitFactor, parseDuration, timeUnitFactor } from './units.js';

/**
 * The small arithmetic a resource field may hold, e.g. `2GB + 3 * size(file)` or
 * `10m + 2s * size(chunk) / 1MB`. Read by hand (no eval) so that a job file can only ever ask
 * for a number:
 *
 *   expression := term (("+" | "-") term)*
 *   term       := factor (("*" | "/") factor)*
 *   factor     := literal | "size(" variable ")" | "(" expression ")"
 *   literal    := number [unit] | a duration such as 1h30m | HH:MM:SS
 *
 * Every value carries its units, as in physics: sizes are bytes, durations ms. Only values of the
 * same units add or subtract; multiplying and dividing combine units, so a size times a number
 * is a size, a size over a size a number, and `2s * size(chunk) / 1MB` a duration (the
 * intermediate `2s * size(chunk)` is allowed, only the result must fit the field). Division by
 * zero is refused. `size(variable)` is the bytes of the file or folder the task's variable names. The one unit both kinds spell alike, `m`, is minutes in
 * `resources.time` and mebibytes elsewhere, as in the plain values those fields take.
 */

export type ResourceField = 'cpus' | 'memory' | 'time';
export type Dimension = 'number' | 'size' | 'duration';

/** A value and the powers of its units: a size is {size: 1, time: 0}, a number {0, 0}. */
export interface Quantity {
  value: number;
  size: number;
  time: number;
}

const UNITS: Record<Dimension, Pick<Quantity, 'size' | 'time'>> = { number: { size: 0, time: 0 }, size: { size: 1, time: 0 }, duration: { size: 0, time: 1 } };

function quantity(value: number, dimension: Dimension): Quantity {
  return { value, ...UNITS[dimension] };
}

/** Whether a quantity is of the kind `dimension` names. */
export function isDimension(q: Quantity, dimension: Dimension): boolean {
  return q.size === UNITS[dimension].size && q.time === UNITS[dimension].time;
}

export type ResourceExpression =
  | { kind: 'literal'; quantity: Quantity }
  | { kind: 'size'; variable: string }
  | { kind: 'operation'; operator: Operator; left: ResourceExpression; right: ResourceExpression };

type Operator = '+' | '-' | '*' | '/';

/** Why an expression cannot be read or computed: `problem` names the expression, `fix` says what to write. */
export class ResourceExpressionError extends Error {
  override name = 'ResourceExpressionError';
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

const UNIT_HELP = 'sizes: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (or K, M, G, T); durations: ms, s, m, min, h, d';
const GRAMMAR_HELP = 'write numbers, sizes and durations with units, + - * / and parentheses, and size(variable), e.g. 2GB + 3 * size(file)';

type Token =
  | { kind: 'literal'; text: string; at: number }
  | { kind: 'name'; text: string; at: number }
  | { kind: 'symbol'; text: '+' | '-' | '*' | '/' | '(' | ')'; at: number }
  | { kind: 'end'; text: ''; at: number };

const CLOCK = /\d+:\d{1,2}:\d{1,2}/y;
/** A number, optionally with a unit, or several number-unit pairs in a row (a duration: 1h30m). */
const LITERAL = /\d+(?:\.\d+)?(?:\s*[A-Za-z]+(?:\d+(?:\.\d+)?[A-Za-z]+)*)?/y;
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  while (at < text.length) {
    const char = text[at]!;
    if (/\s/.test(char)) {
      at++;
      continue;
    }
    if (char === '+' || char === '-' || char === '*' || char === '/' || char === '(' || char === ')') {
      tokens.push({ kind: 'symbol', text: char, at });
      at++;
      continue;
    }
    const match = stickyMatch(CLOCK, text, at) ?? stickyMatch(LITERAL, text, at);
    if (match !== null) {
      tokens.push({ kind: 'literal', text: match, at });
      at += match.length;
      continue;
    }
    const name = stickyMatch(NAME, text, at);
    if (name !== null) {
      tokens.push({ kind: 'name', text: name, at });
      at += name.length;
      continue;
    }
    throw new ResourceExpressionError(`${quote(text)} is not an expression: "${char}" is not allowed in it`, GRAMMAR_HELP);
  }
  tokens.push({ kind: 'end', text: '', at: text.length });
  return tokens;
}

function stickyMatch(pattern: RegExp, text: string, at: number): string | null {
  pattern.lastIndex = at;
  return pattern.exec(text)?.[0] ?? null;
}

/** Parse `text`, the expression of `field`; throws ResourceExpressionError naming what is wrong and where. */
export function parseResourceExpression(text: string, field: ResourceField): ResourceExpression {
  const tokens = tokenize(text);
  let next = 0;
  const peek = (): Token => tokens[next]!;
  const expected = (what: string): never => {
    const token = peek();
    const found = token.kind === 'end' ? 'the end' : `"${text.slice(token.at)}"`;
    throw new ResourceExpressionError(`${quote(text)} is not an expression: expected ${what} at ${found}`, GRAMMAR_HELP);
  };

  const expression = (): ResourceExpression => {
    let left = term();
    for (let token = peek(); token.text === '+' || token.text === '-'; token = peek()) {
      next++;
      left = { kind: 'operation', operator: token.text, left, right: term() };
    }
    return left;
  };
  const term = (): ResourceExpression => {
    let left = factor();
    for (let token = peek(); token.text === '*' || token.text === '/'; token = peek()) {
      next++;
      left = { kind: 'operation', operator: token.text, left, right: factor() };
    }
    return left;
  };
  const factor = (): ResourceExpression => {
    const token = peek();
    if (token.kind === 'literal') {
      next++;
      return { kind: 'literal', quantity: literal(token.text, text, field) };
    }
    if (token.kind === 'symbol' && token.text === '(') {
      next++;
      const inner = expression();
      if (peek().text !== ')') expected('")"');
      next++;
      return inner;
    }
    if (token.kind === 'name') {
      if (token.text !== 'size') {
        throw new ResourceExpressionError(`${quote(text)} is not an expression: "${token.text}" is not a function or unit`, GRAMMAR_HELP);
      }
      next++;
      if (peek().text !== '(') expected('"(" after size');
      next++;
      const variable = peek();
      if (variable.kind !== 'name') expected('a variable name in size(...)');
      next++;
      if (peek().text !== ')') expected('")" after the variable name');
      next++;
      return { kind: 'size', variable: variable.text };
    }
    return expected('a number, a size, a duration, size(variable) or "("');
  };

  const parsed = expression();
  if (peek().kind !== 'end') expected('an operator (+ - * /)');
  return parsed;
}

/** `4GB` → a size; `90s` or `1h30m` → a duration; `3` → a number. */
function literal(token: string, text: string, field: ResourceField): Quantity {
  if (token.includes(':')) return quantity(parseDuration(token)!, 'duration');
  const [, digits, unit] = /^(\d+(?:\.\d+)?)\s*(.*)$/.exec(token)!;
  const number = Number(digits);
  if (!unit) return quantity(number, 'number');
  if (/\d/.test(unit)) {
    const ms = parseDuration(token);
    if (ms === null) throw new ResourceExpressionError(`${quote(text)}: "${token}" is not a duration`, `write a duration such as 1h30m or 90m (${UNIT_HELP})`);
    return quantity(ms, 'duration');
  }
  // `m` means minutes in a time field and mebibytes elsewhere: the field's own kind is tried first.
  const size = memoryUnitFactor(unit);
  const duration = timeUnitFactor(unit);
  if (field === 'time' && duration !== undefined) return quantity(number * duration, 'duration');
  if (size !== undefined) return quantity(number * size, 'size');
  if (duration !== undefined) return quantity(number * duration, 'duration');
  throw new ResourceExpressionError(`${quote(text)}: "${unit}" is not a unit`, UNIT_HELP);
}

/** The variables an expression reads the size of, in order of first use. */
export function sizeVariables(expression: ResourceExpression): string[] {
  const found: string[] = [];
  const walk = (node: ResourceExpression): void => {
    if (node.kind === 'size' && !found.includes(node.variable)) found.push(node.variable);
    if (node.kind === 'operation') {
      walk(node.left);
      walk(node.right);
    }
  };
  walk(expression);
  return found;
}

/** Compute an expression; `sizeOf` gives the bytes of what a variable names. `text` is its source, for messages. */
export function evaluateResourceExpression(expression: ResourceExpression, text: string, sizeOf: (variable: string) => number): Quantity {
  const evaluate = (node: ResourceExpression): Quantity => {
    switch (node.kind) {
      case 'literal':
        return node.quantity;
      case 'size':
        return quantity(sizeOf(node.variable), 'size');
      case 'operation':
        return operate(node.operator, evaluate(node.left), evaluate(node.right), text);
    }
  };
  return evaluate(expression);
}

function operate(operator: Operator, left: Quantity, right: Quantity, text: string): Quantity {
  switch (operator) {
    case '+':
    case '-': {
      if (left.size !== right.size || left.time !== right.time) {
        const [a, b] = [describeUnits(left), describeUnits(right)];
        const verb = operator === '+' ? `adds ${a} and ${b}` : `subtracts ${b} from ${a}`;
        const unitless = isDimension(left, 'number') ? right : isDimension(right, 'number') ? left : null;
        const example = unitless === null ? null : isDimension(unitless, 'size') ? '3MB' : isDimension(unitless, 'duration') ? '3s' : null;
        const fix =
          example === null
            ? 'only values of the same kind add up: sizes to sizes, durations to durations, numbers to numbers'
            : `give the number a unit, e.g. ${example}`;
        throw new ResourceExpressionError(`${quote(text)} ${verb}`, fix);
      }
      return { ...left, value: operator === '+' ? left.value + right.value : left.value - right.value };
    }
    case '*':
      return { value: left.value * right.value, size: left.size + right.size, time: left.time + right.time };
    case '/':
      if (right.value === 0) throw new ResourceExpressionError(`${quote(text)} divides by zero`, 'divide by something other than 0');
      return { value: left.value / right.value, size: left.size - right.size, time: left.time - right.time };
  }
}

/** "a size", "a duration", "a number", or the units spelled out: "size^2", "duration/size". */
export function describeUnits(q: Quantity): string {
  for (const dimension of ['number', 'size', 'duration'] as const) if (isDimension(q, dimension)) return `a ${dimension}`;
  const power = (name: string, exponent: number): string => (exponent === 1 ? name : `${name}^${exponent}`);
  const over = [q.size > 0 ? power('size', q.size) : '', q.time > 0 ? power('duration', q.time) : ''].filter(Boolean).join('*') || '1';
  const under = [q.size < 0 ? power('size', -q.size) : '', q.time < 0 ? power('duration', -q.time) : ''].filter(Boolean).join('*');
  return `a ${under ? `${over}/${under}` : over}`;
}

/** 3e9 bytes → "3.0 GB"; for messages about what an expression came to. */
export function describeQuantity(q: Quantity): string {
  const sign = q.value < 0 ? '-' : '';
  const magnitude = Math.abs(q.value);
  if (isDimension(q, 'size')) return `${sign}${formatBytes(magnitude)}`;
  if (isDimension(q, 'duration')) return `${sign}${formatDuration(magnitude)}`;
  return String(q.value);
}

function quote(text: string): string {
  return JSON.stringify(text);
}
