import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobFileError, UserError } from '../../errors.js';
import type { JobSpec } from '../../job/job-spec.js';
import { DEFAULT_POLL_MS, DEFAULT_QUEUE_SIZE, resolveClusterSettings } from './cluster-settings.js';

describe('cluster settings', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fanout-settings-'));
    env = { FANOUT_SITE_CONFIG: join(dir, 'site.yaml'), FANOUT_CONFIG: join(dir, 'user.yaml') };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const spec = (overrides: Partial<JobSpec> = {}) => ({ file: join(dir, 'job.yaml'), profile: null, cluster: {}, slurm: {}, sge: {}, ...overrides }) as JobSpec;

  it('has defaults without any config file', () => {
    const settings = resolveClusterSettings(spec(), env);
    expect(settings).toMatchObject({ pack: 1, queueSize: DEFAULT_QUEUE_SIZE, submitRate: 2, maxArraySize: null, pollMs: DEFAULT_POLL_MS });
    expect(settings.templateDirs).toEqual([join(dir, 'templates'), join(dir, 'templates')]);
  });

  it('layers site, user, profile and job file, the job file strongest', () => {
    writeFileSync(env.FANOUT_SITE_CONFIG!, 'slurm:\n  account: site\n  partition: short\ncluster:\n  queueSize: 100\n');
    writeFileSync(env.FANOUT_CONFIG!, 'slurm:\n  account: mine\nprofiles:\n  big:\n    slurm:\n      partition: bigmem\n    cluster:\n      pack: 4\n');
    const settings = resolveClusterSettings(spec({ profile: 'big', slurm: { qos: 'long' }, cluster: { pack: 8, poll: '2s' } }), env);
    expect(settings.slurm).toEqual({ account: 'mine', partition: 'bigmem', qos: 'long', extra: [] });
    expect(settings).toMatchObject({ pack: 8, queueSize: 100, pollMs: 2000 });
  });

  it('names the profiles there are when the job asks for one that is not', () => {
    writeFileSync(env.FANOUT_CONFIG!, 'profiles:\n  big: {}\n');
    let error: unknown;
    try {
      resolveClusterSettings(spec({ profile: 'huge' }), env);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(JobFileError);
    expect((error as JobFileError).describe()).toMatch(/profile: no profile "huge" in .*; known profiles: big/);
  });

  it('refuses a config file with an unknown field, naming the file and line', () => {
    writeFileSync(env.FANOUT_CONFIG!, 'slurm:\n  partiton: short\n');
    expect(() => resolveClusterSettings(spec(), env)).toThrow(UserError);
    expect(() => resolveClusterSettings(spec(), env)).toThrow(new RegExp(`${env.FANOUT_CONFIG!.replace(/[.]/g, '\\.')}:2: slurm\\.partiton: unknown field`));
  });
});
