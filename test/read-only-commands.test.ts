import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sandbox } from './harness.js';

/** Commands that only read or check leave a folder without a fanout home as they found it. */
describe('commands that only read', () => {
  let box: Sandbox;
  beforeEach(() => {
    box = new Sandbox();
    box.write('job.yaml', 'command: echo {{ item }} > {{ out }}/x\ntasks:\n  each: [a, b]\n');
    box.write('reads.txt', 'r1\nr2\nr3\nr4\n');
    box.write('chunked.yaml', 'command: wc -l {{ chunk }}\ntasks:\n  chunks:\n    file: reads.txt\n    count: 2\n');
  });
  afterEach(() => box.cleanup());

  it('create no .fanout where none exists', async () => {
    const commands = [
      ['validate', 'job.yaml'],
      ['validate', 'chunked.yaml'],
      ['render', 'job.yaml'],
      ['render', 'chunked.yaml'],
      ['schema'],
      ['status'],
      ['runs'],
      ['tasks'],
      ['logs', 'a'],
    ];
    for (const args of commands) {
      const result = await box.run(args);
      // Those about runs say there are none (exit 2); the others answer (exit 0).
      expect(result.stderr, args.join(' ')).not.toMatch(/internal error/);
      expect(existsSync(box.path('.fanout')), `${args.join(' ')} created .fanout`).toBe(false);
    }
    expect((await box.run(['validate', 'chunked.yaml'])).stdout).toMatch(/2 task\(s\) from chunks/);
    // A run does create it, and then the same commands read it.
    expect((await box.run(['run', 'job.yaml'])).code).toBe(0);
    expect(existsSync(box.path('.fanout', 'state.db'))).toBe(true);
    expect(JSON.parse((await box.run(['status', '--json'])).stdout)).toMatchObject({ state: 'succeeded' });
  }, 300_000);
});
