import { existsSync } from 'node:fs';
import { expect } from 'vitest';
import type { Sandbox } from './harness.js';

/**
 * A command refused before anything ran, as bad input must be: exit 2, one line that matches
 * every pattern (file, line, field, fix), no task output and no run recorded. Returns the line.
 */
export async function expectRefused(box: Sandbox, args: string[], expected: RegExp[]): Promise<string> {
  const result = await box.run(args);
  expect(result.code, result.stderr).toBe(2);
  const message = result.stderr.trim();
  expect(message.split('\n')).toHaveLength(1);
  for (const pattern of expected) expect(message).toMatch(pattern);
  expect(existsSync(box.path('fanout-out'))).toBe(false);
  if (existsSync(box.path('.fanout', 'state.db'))) expect(box.query('SELECT id FROM runs')).toEqual([]);
  return message;
}
