#!/usr/bin/env node
// `npm run lint`: the four checks (`npm run lint:eslint`, `lint:format`, `lint:imports`,
// `lint:unused`) at once, since ESLint's type-aware pass alone takes as long as the other three
// together. Each one's output is printed whole when it ends; the exit code is 1 if any failed.
import { spawn } from 'node:child_process';

const CHECKS = ['eslint', 'format', 'imports', 'unused'];

function run(check) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '-s', `lint:${check}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.stdout.isTTY ? { ...process.env, FORCE_COLOR: '1' } : process.env,
    });
    const output = [];
    child.stdout.on('data', (chunk) => output.push(chunk));
    child.stderr.on('data', (chunk) => output.push(chunk));
    child.on('error', (error) => resolve({ check, ok: false, text: `${error.message}\n`, seconds: 0 }));
    child.on('close', (code, signal) => {
      const seconds = (Date.now() - started) / 1000;
      resolve({ check, ok: code === 0, text: Buffer.concat(output).toString(), seconds, why: signal ?? `exit ${code}` });
    });
  });
}

const results = await Promise.all(
  CHECKS.map((check) =>
    run(check).then((result) => {
      const status = result.ok ? 'ok' : `FAILED (${result.why})`;
      process.stdout.write(`── lint:${check}: ${status}, ${result.seconds.toFixed(1)} s\n${result.text}${result.text.endsWith('\n') || !result.text ? '' : '\n'}`);
      return result;
    }),
  ),
);
const failed = results.filter((result) => !result.ok).map((result) => `lint:${result.check}`);
process.stdout.write(failed.length ? `failed: ${failed.join(', ')}\n` : 'lint: all four checks passed\n');
process.exitCode = failed.length ? 1 : 0;
