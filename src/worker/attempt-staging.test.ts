import { describe, expect, it } from 'vitest';
import { openStorage } from '../storage/open-storage.js';
import { attemptSite } from './attempt-staging.js';

describe('attemptSite', () => {
  const storage = openStorage();

  it('gives every attempt in object storage its own scratch folder, gathers of two runs included', () => {
    const recorded = [
      's3://bucket/work/ab12cd34-1/gather/1',
      's3://bucket/work/ab12cd34-2/gather/1',
      's3://bucket/work/ab12cd34-1/0.1',
      's3://bucket/work/ab12cd34-2/0.1',
      's3://bucket/work/ab12cd34-1/0.2',
    ];
    const local = recorded.map((dir) => attemptSite(storage, dir, '/scratch/w1').local);
    expect(new Set(local).size).toBe(recorded.length);
    for (const dir of local) expect(dir.startsWith('/scratch/w1/')).toBe(true);
  });

  it('runs an attempt whose folder is local where it is', () => {
    expect(attemptSite(storage, '/shared/work/1/0.1', '/scratch/w1')).toEqual({ recorded: '/shared/work/1/0.1', local: '/shared/work/1/0.1', remote: false });
  });
});
