import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { withSetup } from './software-environment.js';

/** What `/bin/sh -c` makes of a command with its setup lines: exactly what every backend runs. */
function run(setup: string[], command: string) {
  const result = spawnSync('/bin/sh', ['-c', withSetup(setup, command)], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('withSetup', () => {
  it('is the command itself when there are no setup lines', () => {
    expect(withSetup([], 'echo hi')).toBe('echo hi');
  });

  it("runs the lines in the command's own shell, so what they define and export holds for it", () => {
    expect(run(['export TOOL=1.0', 'tool() { echo "tool $TOOL $1"; }'], 'tool run')).toEqual({ status: 0, stdout: 'tool 1.0 run\n', stderr: '' });
  });

  it('takes a line that ends in a comment, or is only one', () => {
    expect(run(['X=1 # the version', '# nothing to do here'], 'echo $X')).toMatchObject({ status: 0, stdout: '1\n' });
  });

  it('stops at the first line that fails, with its status, naming it, before the command runs', () => {
    expect(run(['true', 'echo loading; (exit 7)', 'echo never'], 'echo command')).toEqual({
      status: 7,
      stdout: 'loading\n',
      stderr: 'fanout: setup line "echo loading; (exit 7)" exited 7; the command did not run\n',
    });
    expect(run(['false'], 'echo command').stderr).toBe('fanout: setup line "false" exited 1; the command did not run\n');
  });

  it('names a multi-line setup entry by its first line', () => {
    expect(run(['if true; then\n  false\nfi'], 'echo command').stderr).toBe('fanout: setup line "if true; then..." exited 1; the command did not run\n');
  });

  it("passes the command's own status through once the setup succeeded", () => {
    expect(run(['true'], 'exit 3').status).toBe(3);
  });
});
