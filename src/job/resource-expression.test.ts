import { describe, expect, it } from 'vitest';
import { parseResourceExpression, ResourceExpressionError, sizeVariables, type ResourceField } from './resource-expression.js';
import { compileResource, resourceValue } from './resource-setting.js';

const MB = 1e6;
const GB = 1e9;
const MIB = 1024 ** 2;
const MINUTE = 60_000;

/** size(file) is 5 MB, size(folder) 2 GB; any other name is unknown. */
function sizeOf(variable: string): number {
  const sizes: Record<string, number> = { file: 5 * MB, chunk: 5 * MB, folder: 2 * GB };
  const size = sizes[variable];
  if (size === undefined) throw new ResourceExpressionError(`size(${variable}) names a variable that the task does not have`, 'name one');
  return size;
}

describe('resource values and expressions', () => {
  it.each<[ResourceField, string, number]>([
    // Plain values, read as they always were.
    ['memory', '4GB', 4 * GB],
    ['memory', '512M', 512 * MIB],
    ['memory', '1.5 GiB', 1.5 * 1024 ** 3],
    ['time', '90s', 90_000],
    ['time', '1h30m', 90 * MINUTE],
    ['time', '1-00:00:00', 24 * 60 * MINUTE],
    ['cpus', '4', 4],
    ['cpus', ' 2 ', 2],
    // Arithmetic with units.
    ['memory', '2GB + 3 * size(file)', 2 * GB + 15 * MB],
    ['memory', '2GB+3*size(file)', 2 * GB + 15 * MB],
    ['memory', 'size(folder) * 1.5', 3 * GB],
    ['memory', '(1GB + size(file)) * 2', 2 * GB + 10 * MB],
    ['memory', '1GB + 2GB - 500MB', 2.5 * GB],
    ['memory', '4GB / 2 / 2', 1 * GB],
    ['memory', '10m', 10 * MIB],
    ['memory', '1 GB * 2', 2 * GB],
    ['time', '10m + 2s * size(chunk) / 1MB', 10 * MINUTE + 10_000],
    ['time', '1h30m + 30m', 2 * 60 * MINUTE],
    ['time', '01:00:00 * 2', 2 * 60 * MINUTE],
    ['time', '90s * size(file) / 1MB', 450_000],
    ['cpus', '1 + size(folder) / 1GB', 3],
    ['cpus', 'size(file) / 1MB / 2', 3], // 2.5, rounded up
    ['cpus', '2 * 3', 6],
    // Results are whole bytes and milliseconds, rounded up.
    ['memory', '1KB / 3', 334],
    ['time', '1s / 3', 334],
  ])('%s: %s', (field, text, expected) => {
    expect(resourceValue(field, text, sizeOf)).toBe(expected);
  });

  it.each<[ResourceField, string, string, string]>([
    // Plain values gone wrong keep the short message they always had.
    ['memory', 'lots', '"lots" is not a size', 'write a size with a unit, e.g. 512MB or 4GB'],
    ['memory', '100', '"100" is not a size', 'write a size with a unit'],
    ['memory', '-5GB', '"-5GB" is not a size', 'write a size with a unit'],
    ['time', 'soon', '"soon" is not a duration', 'write a duration with a unit'],
    ['cpus', '2.5', '"2.5" is not a whole number of cpus', 'write a whole number'],
    ['cpus', '0', '"0" is not a whole number of cpus', 'write a whole number'],
    // Expressions that do not read.
    ['memory', '2GB + * 3', 'expected a number, a size, a duration, size(variable) or "(" at "* 3"', 'size(variable)'],
    ['memory', '2GB + ', 'expected a number, a size, a duration, size(variable) or "(" at the end', '+ - * /'],
    ['memory', '(2GB + 1GB', 'expected ")" at the end', 'parentheses'],
    ['memory', '2GB 3GB + 1GB', 'expected an operator (+ - * /) at "3GB + 1GB"', '+ - * /'],
    ['memory', '2GB + 4 parsecs', '"parsecs" is not a unit', 'KiB'],
    ['memory', 'size(file', 'expected ")" after the variable name at the end', 'size('],
    ['memory', 'size() * 2', 'expected a variable name in size(...) at ") * 2"', 'size('],
    ['memory', 'sqrt(4GB) + 1GB', '"sqrt" is not a function or unit', 'size(variable)'],
    ['memory', '2GB + $(rm -rf /)', '"$" is not allowed in it', 'size(variable)'],
    ['memory', '2GB ** 2', 'expected a number, a size, a duration, size(variable) or "(" at "* 2"', '+ - * /'],
    ['time', '1h30x + 1m', '"1h30x" is not a duration', '1h30m'],
    // Units that do not mix.
    ['memory', '2GB + 3', '"2GB + 3" adds a size and a number', 'give the number a unit, e.g. 3MB'],
    ['time', '3 - 10s', '"3 - 10s" subtracts a duration from a number', 'give the number a unit, e.g. 3s'],
    ['memory', '1GB + 1h', 'adds a size and a duration', 'only values of the same kind add up'],
    ['memory', '1GB * 2s + 1GB', 'adds a size*duration and a size', 'only values of the same kind add up'],
    ['memory', 'size(file) * size(file)', 'comes to a size^2, not a size', 'make it a size'],
    ['memory', '2 / 1GB', 'comes to a 1/size, not a size', 'make it a size'],
    ['time', '1h / 1GB', 'comes to a duration/size, not a duration', 'make it a duration'],
    ['memory', '1GB / (size(file) - 5MB)', 'divides by zero', 'other than 0'],
    // Results of the wrong kind or size.
    ['memory', 'size(file) / 1MB', '"size(file) / 1MB" comes to a number, not a size', 'make it a size, e.g. 2GB + 3 * size(file)'],
    ['time', '2GB + 1GB', 'comes to a size, not a duration', 'make it a duration'],
    ['cpus', '2 * 1GB', 'comes to a size, not a number', 'make it a number'],
    ['memory', '1GB - size(folder)', '"1GB - size(folder)" comes to -1.0 GB', 'more than 0'],
    ['time', '10s - 10s', 'comes to 0ms', 'more than 0'],
    // size() of what the task does not have.
    ['memory', '2 * size(nothing)', 'size(nothing) names a variable that the task does not have', 'name one'],
  ])('%s: %s is refused', (field, text, problem, fix) => {
    let caught: unknown;
    try {
      resourceValue(field, text, sizeOf);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ResourceExpressionError);
    expect((caught as ResourceExpressionError).message).toContain(problem);
    expect((caught as ResourceExpressionError).fix).toContain(fix);
  });

  it('lists the variables an expression reads the size of', () => {
    expect(sizeVariables(parseResourceExpression('size(a) + 2 * (size(b) - size(a))', 'memory'))).toEqual(['a', 'b']);
    expect(sizeVariables(parseResourceExpression('2GB', 'memory'))).toEqual([]);
  });

  it('compiles a field to one value when no task can change it, and keeps it as written when one can', () => {
    expect(compileResource('cpus', 4)).toEqual({ constant: 4 });
    expect(compileResource('memory', '4GB')).toEqual({ constant: 4 * GB });
    expect(compileResource('memory', '2GB + 500MB')).toEqual({ constant: 2.5 * GB });
    expect(compileResource('memory', '{{ mem }}')).toEqual({ perTask: '{{ mem }}' });
    expect(compileResource('time', '{{ hours }}h')).toEqual({ perTask: '{{ hours }}h' });
    expect(compileResource('memory', '2GB + 3 * size(file)')).toEqual({ perTask: '2GB + 3 * size(file)' });
    expect(() => compileResource('memory', 'lots')).toThrow('"lots" is not a size');
    expect(() => compileResource('memory', '2GB + 3 * size(file')).toThrow('expected ")"');
    expect(() => compileResource('memory', '2GB + 3')).toThrow('adds a size and a number');
  });
});
