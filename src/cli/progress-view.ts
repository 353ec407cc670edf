import type { Progress } from '../engine/run-handle.js';
import { formatDuration } from '../job/units.js';

/**
 * Live progress: a bar redrawn in place on a terminal, a plain line now and then on a pipe,
 * nothing with --json (the final status is printed instead).
 */
export class ProgressView {
  private lastDraw = 0;
  private lastLine = '';
  private readonly interval: number;

  constructor(
    private readonly mode: 'tty' | 'lines' | 'quiet',
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.interval = mode === 'tty' ? 100 : Number(process.env.FANOUT_PROGRESS_SECONDS ?? 10) * 1000;
  }

  update(progress: Progress, force = false): void {
    if (this.mode === 'quiet') return;
    const now = Date.now();
    if (!force && now - this.lastDraw < this.interval) return;
    this.lastDraw = now;
    const line = describe(progress, now);
    if (this.mode === 'tty') this.stream.write(`\r\x1b[2K${line}`);
    else if (line !== this.lastLine) this.stream.write(`${line}\n`);
    this.lastLine = line;
  }

  /** Leave the terminal on a fresh line. */
  finish(progress: Progress): void {
    this.update(progress, true);
    if (this.mode === 'tty') this.stream.write('\n');
  }

  note(message: string): void {
    if (this.mode === 'tty') this.stream.write(`\r\x1b[2K${message}\n`);
    else this.stream.write(`${message}\n`);
  }
}

function describe(progress: Progress, now: number): string {
  const { counts, total } = progress;
  const done = counts.succeeded + counts.skipped + counts.failed + counts.cancelled;
  const width = 24;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const elapsed = Math.max(1, now - progress.startedAt);
  const ran = counts.succeeded + counts.failed;
  const rate = (ran / elapsed) * 1000;
  const left = counts.pending + counts.running;
  const eta = rate > 0 && left > 0 ? ` · ETA ${formatDuration((left / rate) * 1000)}` : '';
  const skipped = counts.skipped ? ` · ${counts.skipped} skipped` : '';
  return `${bar} ${done}/${total} done · ${counts.failed} failed · ${counts.running} running · ${counts.pending} pending${skipped} · ${rate.toFixed(rate < 10 ? 1 : 0)}/s${eta}`;
}
