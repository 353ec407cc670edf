import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readLogPiece, TAIL_BYTES } from './log-tail.js';

const dir = mkdtempSync(join(tmpdir(), 'fanout-log-tail-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('log pieces', () => {
  it('opens a long log at its tail, and goes on from an offset to the end', async () => {
    const file = join(dir, 'long.log');
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join('');
    writeFileSync(file, lines);
    const size = Buffer.byteLength(lines);
    const tail = await readLogPiece(file, undefined);
    expect(tail).toMatchObject({ offset: size - TAIL_BYTES, nextOffset: size, found: true });
    expect(tail.text.endsWith('line 19999\n')).toBe(true);
    expect(tail.text).toHaveLength(TAIL_BYTES);
    expect(await readLogPiece(file, size)).toEqual({ offset: size, nextOffset: size, text: '', found: true });
    expect(await readLogPiece(file, size + 100)).toEqual({ offset: size, nextOffset: size, text: '', found: true });
    expect((await readLogPiece(file, 0)).text.startsWith('line 0\nline 1\n')).toBe(true);
  });

  it('never cuts a character in two: the next piece starts with all of it', async () => {
    const file = join(dir, 'accents.log');
    writeFileSync(file, 'héllo 🚀\n');
    // A log written up to the middle of a character: the piece stops before it, and asking again
    // from nextOffset will give it whole once the rest is written.
    const whole = await readLogPiece(file, 0);
    expect(whole).toMatchObject({ text: 'héllo 🚀\n', nextOffset: Buffer.byteLength('héllo 🚀\n') });
    writeFileSync(file, Buffer.concat([Buffer.from('ok '), Buffer.from('🚀').subarray(0, 2)]));
    const cut = await readLogPiece(file, 0);
    expect(cut).toMatchObject({ text: 'ok ', nextOffset: 3 });
  });

  it('says when there is no log (yet)', async () => {
    expect(await readLogPiece(join(dir, 'missing.log'), undefined)).toEqual({ offset: 0, nextOffset: 0, text: '', found: false });
    expect(await readLogPiece(join(dir, 'missing.log'), 40)).toEqual({ offset: 40, nextOffset: 40, text: '', found: false });
  });
});
