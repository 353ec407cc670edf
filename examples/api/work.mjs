import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

/** Runs in a worker process, once per item: counts the lines and words of one file. */
export async function countWords(file) {
  const text = await readFile(file, 'utf8');
  return { file: basename(file), lines: text.split('\n').filter(Boolean).length, words: text.split(/\s+/).filter(Boolean).length };
}
