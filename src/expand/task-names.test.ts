import { describe, expect, it } from 'vitest';
import { JobFileError } from '../errors.js';
import { areUsableNames, checkTaskNames, nameProblem } from './task-names.js';

const where = { file: '/jobs/job.yaml', line: 3, field: 'tasks.files' };

describe('nameProblem', () => {
  it('accepts names that are data to the shell, not path syntax', () => {
    for (const name of ['s1', 'a b', `q"uo'te`, 'new\nline', '$(rm -rf ~)', '`id`', '...', 'é']) {
      expect(nameProblem(name)).toBeNull();
    }
  });

  it('rejects names that cannot be one folder name', () => {
    expect(nameProblem('')).toBe('is empty');
    expect(nameProblem('.')).toMatch(/special/);
    expect(nameProblem('..')).toMatch(/special/);
    expect(nameProblem('a/b')).toBe('contains "/"');
    expect(nameProblem('a\0b')).toMatch(/NUL/);
  });

  it('limits names to 200 bytes, not characters', () => {
    expect(nameProblem('x'.repeat(200))).toBeNull();
    expect(nameProblem('x'.repeat(201))).toMatch(/201 bytes/);
    expect(nameProblem('é'.repeat(101))).toMatch(/202 bytes/);
  });
});

describe('areUsableNames', () => {
  it('needs every name valid and unique', () => {
    expect(areUsableNames(['a', 'b c'])).toBe(true);
    expect(areUsableNames(['a', 'a'])).toBe(false);
    expect(areUsableNames(['a', 'x/y'])).toBe(false);
  });
});

describe('checkTaskNames', () => {
  it('passes valid unique names', () => {
    expect(() => checkTaskNames([{ name: 'a', origin: 'x' }], where, 'fix')).not.toThrow();
  });

  it('names both sources of a duplicate', () => {
    const tasks = [
      { name: 's1', origin: '/d/a/s1.fq' },
      { name: 's2', origin: '/d/a/s2.fq' },
      { name: 's1', origin: '/d/b/s1.fq.gz' },
    ];
    expect(() => checkTaskNames(tasks, where, 'rename one')).toThrow(
      new JobFileError(where, 'the task name "s1" comes from both /d/a/s1.fq and /d/b/s1.fq.gz', 'rename one'),
    );
  });

  it('quotes invalid names so newlines stay on one line, and summarises beyond three', () => {
    const tasks = ['a/1', 'a/2', '', '.', 'ok'].map((name, i) => ({ name, origin: `item ${i}` }));
    try {
      checkTaskNames(tasks, where, 'fix them');
      expect.unreachable();
    } catch (error) {
      const { message, fix } = error as JobFileError;
      expect(message).toBe(
        '/jobs/job.yaml:3: tasks.files: the task name "a/1" (from item 0) contains "/"; ' + '"a/2" (from item 1) contains "/"; "" (from item 2) is empty; and 1 more',
      );
      expect(fix).toBe('fix them');
    }
  });
});
