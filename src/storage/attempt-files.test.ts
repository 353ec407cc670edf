import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RETURN_FILE } from '../api/map-protocol.js';
import { RESULT_FILE, STDERR_FILE, STDOUT_FILE } from '../runner/result-record.js';
import { AttemptFiles, TAIL_BYTES } from './attempt-files.js';
import { openStorage } from './open-storage.js';

const dir = mkdtempSync(join(tmpdir(), 'fanout-attempt-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const files = new AttemptFiles(openStorage());

/** An attempt folder with these files in it. */
function attemptWith(name: string, contents: Record<string, string | Buffer>): string {
  const folder = join(dir, name);
  mkdirSync(folder, { recursive: true });
  for (const [file, content] of Object.entries(contents)) writeFileSync(join(folder, file), content);
  return folder;
}

describe('log pieces', () => {
  it('opens a long log at its tail, and goes on from an offset to the end', async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join('');
    const attempt = attemptWith('long', { [STDOUT_FILE]: lines });
    const size = Buffer.byteLength(lines);
    const tail = await files.readLogPiece(attempt, 'stdout');
    expect(tail).toMatchObject({ offset: size - TAIL_BYTES, nextOffset: size, found: true });
    expect(tail.text.endsWith('line 19999\n')).toBe(true);
    expect(tail.text).toHaveLength(TAIL_BYTES);
    expect(await files.readLogPiece(attempt, 'stdout', { offset: size })).toEqual({ offset: size, nextOffset: size, text: '', found: true });
    expect(await files.readLogPiece(attempt, 'stdout', { offset: size + 100 })).toEqual({ offset: size, nextOffset: size, text: '', found: true });
    expect((await files.readLogPiece(attempt, 'stdout', { offset: 0 })).text.startsWith('line 0\nline 1\n')).toBe(true);
  });

  it('never cuts a character in two: the next piece starts with all of it', async () => {
    const attempt = attemptWith('accents', { [STDERR_FILE]: 'héllo 🚀\n' });
    // A log written up to the middle of a character: the piece stops before it, and asking again
    // from nextOffset will give it whole once the rest is written.
    const whole = await files.readLogPiece(attempt, 'stderr', { offset: 0 });
    expect(whole).toMatchObject({ text: 'héllo 🚀\n', nextOffset: Buffer.byteLength('héllo 🚀\n') });
    writeFileSync(join(attempt, STDERR_FILE), Buffer.concat([Buffer.from('ok '), Buffer.from('🚀').subarray(0, 2)]));
    const cut = await files.readLogPiece(attempt, 'stderr', { offset: 0 });
    expect(cut).toMatchObject({ text: 'ok ', nextOffset: 3 });
  });

  it('says when there is no log (yet)', async () => {
    const attempt = join(dir, 'not-started');
    expect(await files.readLogPiece(attempt, 'stdout')).toEqual({ offset: 0, nextOffset: 0, text: '', found: false });
    expect(await files.readLogPiece(attempt, 'stdout', { offset: 40 })).toEqual({ offset: 40, nextOffset: 40, text: '', found: false });
  });

  it('reads at most the bytes asked for, and never more than a piece holds', async () => {
    const attempt = attemptWith('bounded', { [STDOUT_FILE]: '0123456789', [STDERR_FILE]: 'x'.repeat(3 * 1024 * 1024) });
    expect(await files.readLogPiece(attempt, 'stdout', { offset: 2, maxBytes: 3 })).toEqual({ offset: 2, nextOffset: 5, text: '234', found: true });
    expect(await files.readLogPiece(attempt, 'stdout', { maxBytes: 4 })).toEqual({ offset: 6, nextOffset: 10, text: '6789', found: true });
    expect((await files.readLogPiece(attempt, 'stderr', { offset: 0, maxBytes: 10 * 1024 * 1024 })).text).toHaveLength(1024 * 1024);
  });
});

describe('attempt files', () => {
  it('streams a log whole, or says null when there is none', async () => {
    const attempt = attemptWith('streamed', { [STDOUT_FILE]: 'out\n' });
    const stream = await files.openLog(attempt, 'stdout');
    const chunks: Buffer[] = [];
    for await (const chunk of stream!) chunks.push(Buffer.from(chunk));
    expect(Buffer.concat(chunks).toString()).toBe('out\n');
    expect(await files.openLog(attempt, 'stderr')).toBeNull();
    expect(await files.readLogText(attempt, 'stdout')).toBe('out\n');
    expect(await files.readLogText(attempt, 'stderr')).toBeNull();
    expect(files.logLocation(attempt, 'stderr')).toBe(join(attempt, STDERR_FILE));
  });

  it('reads the result record, and takes one that does not parse as none', async () => {
    const record = { id: 7, reason: 'exit', exitCode: 2, signal: null, startedAt: 1, endedAt: 2, peakMemory: 3, cpuMs: 4, host: 'h', pid: 99 };
    expect(await files.readResultRecord(attemptWith('recorded', { [RESULT_FILE]: JSON.stringify(record) }))).toEqual(record);
    expect(await files.readResultRecord(attemptWith('half-written', { [RESULT_FILE]: '{"id": 7, "rea' }))).toBeNull();
    expect(await files.readResultRecord(join(dir, 'no-record'))).toBeNull();
  });

  it("reads a function's return value from the task's outputs", async () => {
    expect(await files.readReturnValue(attemptWith('returned', { [RETURN_FILE]: '{"n":[1,2]}' }))).toEqual({ n: [1, 2] });
    expect(await files.readReturnValue(attemptWith('returned-null', { [RETURN_FILE]: 'null' }))).toBeNull();
    expect(await files.readReturnValue(join(dir, 'returned-undefined'))).toBeUndefined();
  });

  it('knows that logs in a folder are there while the attempt runs', () => {
    expect(files.arriveWhenEnded(join(dir, 'running'))).toBe(false);
  });
});
