import { describe, expect, it } from 'vitest';
import { UserError } from '../errors.js';
import { StorePatience, storePatienceMs } from './store-patience.js';

/** The policy alone, with errors shaped as node-postgres raises them (the real outage is test/workers-store-outage.test.ts). */
describe('store patience', () => {
  const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  const adminShutdown = () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });

  function patience(giveUpMs: number) {
    const said: string[] = [];
    return { said, patience: new StorePatience({ name: 'postgres://u@h/db', giveUpMs, say: (line) => said.push(line) }) };
  }

  it('retries while the store is out of reach, and says once that it went and once that it came back', async () => {
    const { said, patience: p } = patience(60_000);
    expect(p.reachableFor()).toBe(Infinity);
    const failures = [refused(), adminShutdown(), new Error('Connection terminated unexpectedly')];
    const answer = await p.call(async () => {
      const failure = failures.shift();
      if (failure) throw failure;
      return 42;
    });
    expect(answer).toBe(42);
    expect(said).toEqual([expect.stringMatching(/^the store postgres:\/\/u@h\/db is unreachable \(connect ECONNREFUSED/), expect.stringMatching(/is back after/)]);
    expect(p.reachableFor()).toBeLessThan(Infinity);
  });

  it('passes any other error through at once', async () => {
    const { said, patience: p } = patience(60_000);
    const syntax = Object.assign(new Error('syntax error'), { code: '42601' });
    await expect(p.call(() => Promise.reject(syntax))).rejects.toBe(syntax);
    expect(said).toEqual([]);
  });

  it('gives up after its time with a UserError naming the fix, then fails at once until the store answers', async () => {
    const { patience: p } = patience(300);
    const failure = p.call(() => Promise.reject(refused()));
    await expect(failure).rejects.toBeInstanceOf(UserError);
    await expect(failure).rejects.toThrow(/has been unreachable for .*; gave up/);
    expect(((await failure.catch((e: unknown) => e)) as UserError).fix).toMatch(/FANOUT_STORE_PATIENCE/);
    let tries = 0;
    await expect(p.call(() => (tries++, Promise.reject(refused())))).rejects.toBeInstanceOf(UserError);
    expect(tries).toBe(1);
  });

  it('reads FANOUT_STORE_PATIENCE, refusing what is not a duration', () => {
    expect(storePatienceMs({})).toBe(10 * 60_000);
    expect(storePatienceMs({ FANOUT_STORE_PATIENCE: '30s' })).toBe(30_000);
    expect(() => storePatienceMs({ FANOUT_STORE_PATIENCE: 'soon' })).toThrow(/FANOUT_STORE_PATIENCE=soon is not a duration/);
  });
});
