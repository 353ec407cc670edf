import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { Sandbox } from './harness.js';
import { createBucket, describeWithS3, s3Endpoint, s3Env } from './services/s3.js';

/**
 * What commands that touch S3 print, run as users run them against the suite's s3rver. Under
 * Node 20 the AWS SDK prints an 8-line NodeVersionSupportWarning once per process unless told
 * not to; fanout tells it not to, for the moment it builds its client only.
 */

/** Lines of the SDK's warning: its name, and its first line of text. */
const SDK_NODE_WARNING = /NodeVersionSupportWarning|The AWS SDK for JavaScript \(v3\)/;
const SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

describeWithS3('commands that touch S3', () => {
  let box: Sandbox;
  let env: NodeJS.ProcessEnv;
  let bucket: string;

  beforeAll(async () => {
    bucket = await createBucket(s3Endpoint());
  });
  beforeEach(() => {
    box = new Sandbox();
    // As a user's shell has it: no switch of the SDK's set beforehand.
    env = { ...s3Env(s3Endpoint()), [SWITCH]: undefined };
  });
  afterEach(() => box.cleanup());

  it("print no AWS SDK warning about Node's version, and leave the SDK's switch out of the commands they run", async () => {
    box.write(
      'job.yaml',
      [
        'backend: workers',
        `outdir: s3://${bucket}/quiet`,
        'command: echo hi',
        'tasks:',
        '  each: [a, b]',
        'notify:',
        `  command: env > ${box.path('notify-env.txt')}`,
        '',
      ].join('\n'),
    );
    const run = await box.run(['run', 'job.yaml', '--detach'], { env });
    expect(run.code, run.stderr).toBe(0);
    const worker = await box.run(['worker', '--until-empty'], { env });
    expect(worker.code, worker.stderr).toBe(0);
    const logs = await box.run(['logs', '1', 'a'], { env });
    expect(logs.code, logs.stderr).toBe(0);
    for (const result of [run, worker, logs]) expect(result.stderr).not.toMatch(SDK_NODE_WARNING);
    // The run ended in the worker, after its S3 client was built: its notify command sees the user's environment.
    expect(readFileSync(box.path('notify-env.txt'), 'utf8')).not.toContain(SWITCH);
  });
});
