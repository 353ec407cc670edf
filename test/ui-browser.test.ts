import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finished, Sandbox, waitFor } from './harness.js';

/**
 * The dashboard end to end, in Debian's headless Chromium driven by playwright-core (no browser
 * download): a real `fanout run` and a real `fanout ui`, and a person's clicks. Screenshots of
 * the run page land in test/screenshots/ for a person to look at.
 */
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
const required = process.env.FANOUT_REQUIRE_SERVICES === '1';
const present = existsSync(CHROMIUM);

if (!present && !required) {
  process.stderr.write(`ui-browser: skipped: ${CHROMIUM} is missing (apt-get install -y chromium); set FANOUT_REQUIRE_SERVICES=1 to fail instead\n`);
}

describe.skipIf(!present && !required)('fanout ui in a browser', () => {
  let box: Sandbox;
  let ui: ChildProcess;
  let url = '';
  let browser: import('playwright-core').Browser;

  beforeAll(async () => {
    if (!present) throw new Error(`${CHROMIUM} is missing and FANOUT_REQUIRE_SERVICES=1: install it with apt-get install -y chromium`);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    box = new Sandbox('fanout-ui-');
    mkdirSync(SCREENSHOTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (ui) {
      ui.kill('SIGTERM');
      await finished(ui);
    }
    box?.cleanup();
    delete process.env.FIXED;
    delete process.env.GO;
  });

  async function startUi(): Promise<void> {
    ui = box.start(['ui', '--port', '0']);
    let printed = '';
    ui.stdout!.on('data', (chunk) => (printed += chunk));
    url = await waitFor(() => /fanout ui: (http:\S+)/.exec(printed)?.[1], 20_000, 'fanout ui to print its URL');
  }

  it('shows a run live, opens a log, retries a failed task, and cancels a run; nothing in it is markup', async () => {
    const hostile = '<img src=x onerror="window.pwned=1">';
    box.write(
      'job.yaml',
      [
        'name: live',
        // `flaky` fails until `fixed` exists; the `wait-*` tasks run until `go` exists.
        `command: 'echo hello from {{item}}; echo "<script>window.pwned=2</script>"; case {{item}} in flaky) test -e "$FIXED" ;; wait-*) while [ ! -e "$GO" ]; do sleep 0.1; done; echo released ;; esac'`,
        'tasks:',
        `  each: [flaky, wait-1, wait-2, ${JSON.stringify(hostile)}]`,
        'concurrency: 4',
        // Far more than `echo` needs: the memory plot says so.
        'resources: {memory: 1GB}',
        '',
      ].join('\n'),
    );
    const env = { FIXED: box.path('fixed'), GO: box.path('go') };
    // The UI drives the retry, so its tasks see the same environment.
    const run = box.start(['run', 'job.yaml'], { env });
    Object.assign(process.env, env);
    await startUi();

    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(String(error)));
    await page.goto(url);
    await page.locator('#runs tr[data-run]').first().click();
    await page.waitForSelector('#tasks tbody tr[data-task]');

    // Live: counts change without a reload (a marker set now survives).
    await page.evaluate(() => ((window as any).marker = 'same page'));
    await page.waitForFunction(() => document.querySelector('[data-state="running"]')?.textContent === '2 running', null, { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector('[data-state="failed"]')?.textContent === '1 failed', null, { timeout: 20_000 });
    // A running task's log is followed: what it prints later appears.
    await page.locator('#tasks tr[data-task="wait-1"]').click();
    await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('hello from wait-1'), null, { timeout: 20_000 });
    expect(await page.textContent('#log-note')).toBe('following…');
    await page.screenshot({ path: join(SCREENSHOTS, 'run-page-running.png'), fullPage: true });
    box.write('go', '');
    await page.waitForFunction(() => document.querySelector('#log')?.textContent?.endsWith('released\n'), null, { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector('#summary')?.getAttribute('data-run-state') === 'failed', null, { timeout: 20_000 });
    expect(await page.textContent('[data-state="succeeded"]')).toBe('3 succeeded');
    expect(await page.evaluate(() => (window as any).marker)).toBe('same page');
    await finished(run);

    // The hostile name is shown as text, and its log line too.
    await page.locator(`#tasks tr[data-task="${hostile.replace(/"/g, '\\"')}"]`).click();
    await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('<script>window.pwned=2</script>'), null, { timeout: 20_000 });
    // The task view may be redrawn once more as the run's last status arrives: wait for it to settle on this task.
    await page.waitForFunction((name) => document.querySelector('#task-name')?.textContent === name, hostile, { timeout: 20_000 });
    expect(await page.textContent('#task-name')).toBe(hostile);
    expect(await page.evaluate(() => (window as any).pwned)).toBeUndefined();
    expect(await page.locator('#tasks img, #log script').count()).toBe(0);

    // A failed task's log and result record.
    await page.locator('#tasks tr[data-task="flaky"]').click();
    await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('hello from flaky'), null, { timeout: 20_000 });
    expect(await page.textContent('#result-record')).toContain('exit');

    // Retry the failed task: the server drives it; the page follows to success.
    box.write('fixed', '');
    await page.click('#retry');
    await page.waitForFunction(() => document.querySelector('#summary')?.getAttribute('data-run-state') === 'succeeded', null, { timeout: 30_000 });
    expect(await page.textContent('[data-state="succeeded"]')).toBe('4 succeeded');
    // The open task shows its new attempt by itself, with its record and log.
    await page.waitForFunction(() => document.querySelectorAll('#attempt option').length === 2, null, { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector('#result-record')?.textContent?.includes('ok'), null, { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector('#log')?.textContent?.includes('hello from flaky'), null, { timeout: 20_000 });
    await page.waitForSelector('#plot-durations rect.bin');
    await page.waitForSelector('#plot-memory circle.point');
    expect(await page.textContent('#over-asked')).toMatch(/^median task used \d+(\.\d)? MB of 1\.0 GB$/);
    // The progress bar is all green, drawn despite the page's strict Content-Security-Policy.
    expect(await page.evaluate(() => (document.querySelector('#progress .succeeded') as HTMLElement).getBoundingClientRect().width)).toBeGreaterThan(500);
    await page.screenshot({ path: join(SCREENSHOTS, 'run-page-done.png'), fullPage: true });

    // Cancel a second run from its page.
    box.write('long.yaml', ['name: long', 'command: sleep 60', 'tasks:', '  each: [one, two]', ''].join('\n'));
    const long = box.start(['run', 'long.yaml']);
    await page.goto(url.replace(/\?.*$/, ''));
    await page.waitForFunction(() => document.querySelectorAll('#runs tr[data-run]').length === 2, null, { timeout: 20_000 });
    await page.locator('#runs tr[data-run]').first().click();
    await page.waitForFunction(() => document.querySelector('[data-state="running"]')?.textContent === '2 running', null, { timeout: 20_000 });
    await page.click('#cancel');
    await page.waitForFunction(() => document.querySelector('#summary')?.getAttribute('data-run-state') === 'cancelled', null, { timeout: 30_000 });
    await page.screenshot({ path: join(SCREENSHOTS, 'run-page-cancelled.png'), fullPage: true });
    await finished(long);
    expect(problems).toEqual([]);
  }, 120_000);
});
