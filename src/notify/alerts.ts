import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HomeLayout } from '../engine/home-layout.js';
import type { NotifySpec } from '../job/job-spec.js';
import type { Storage } from '../storage/storage.js';
import type { ResultChange } from '../store/run-ledger.js';
import type { RunRecord, RunState } from '../store/records.js';
import type { Store } from '../store/store.js';
import { runEndedEvent, runEndedSummary, taskFailedSummary, type AlertSummary, type FailedTaskSummary } from './alert-summary.js';
import { runAlertCommand } from './command-delivery.js';
import { postWebhook, webhookOrigin } from './webhook-delivery.js';

/**
 * A process's alerts (`notify:` in the job file): callers say what happened, once, after it is
 * committed to the store; this sends it in the background and never throws. Deliveries of one
 * run go out one after another, in the order the events happened; a process about to exit
 * calls `drain` to let the ones in flight finish, for a bounded time.
 *
 * Exactly one alert per event is the callers' part: they alert only on a change the store says
 * they made (a result that applied, a run this process settled), never on a local flag.
 */

/** How long a process about to exit waits for alerts in flight, by default. */
export const ALERT_WAIT_MS = 30_000;

/** After the wait, what stopping the deliveries in flight may take (a command's SIGTERM grace). */
const STOP_GRACE_MS = 3_000;

/** The file in a run's folder where every delivery is noted. */
const ALERT_LOG = 'alerts.log';

export interface AlertsOptions {
  /** Places each run's folder, where deliveries are noted in `alerts.log` (when it is a local folder). */
  layout: HomeLayout;
  /** Says whether a run's folder is a local folder. */
  storage: Storage;
  /** Where a failed delivery is reported (default: this process's stderr). */
  log?: (line: string) => void;
}

export class Alerts {
  private readonly stopping = new AbortController();
  private readonly runQueues = new Map<number, Promise<void>>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly log: (line: string) => void;
  private readonly storage: Storage;

  constructor(private readonly options: AlertsOptions) {
    this.log = options.log ?? ((line) => process.stderr.write(`fanout: ${line}\n`));
    this.storage = options.storage;
  }

  /** A run ended in `state` (committed by this process): alert `finished` or `failed` if asked to. */
  runEnded(store: Store, run: RunRecord, state: RunState): void {
    const notify = notifyOf(run);
    const event = runEndedEvent(state);
    if (!notify || event === null || !notify.on.includes(event)) return;
    this.enqueue(run, notify, async () => runEndedSummary(store, run.id, event));
  }

  /** Results this process committed that applied: alert `task_failed` for each that failed for good. */
  tasksFailed(run: RunRecord, applied: ResultChange[], nameOf: (index: number) => string | undefined): void {
    const notify = notifyOf(run);
    if (!notify || !notify.on.includes('task_failed')) return;
    for (const task of failedForGood(applied, nameOf)) this.enqueue(run, notify, async () => taskFailedSummary(run, task));
  }

  /**
   * Wait for the deliveries in flight, at most `timeoutMs`; then stop those still going (each is
   * logged as given up) and return. Nothing is sent after this.
   */
  async drain(timeoutMs = ALERT_WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) {
      const waiting = new AbortController();
      await Promise.race([Promise.allSettled([...this.inFlight]), sleep(deadline - Date.now(), undefined, { signal: waiting.signal }).catch(() => undefined)]);
      waiting.abort();
    }
    const left = this.inFlight.size;
    this.stopping.abort(new Error(`fanout was exiting and had waited ${Math.round(timeoutMs / 1000)}s for alerts`));
    if (left === 0) return;
    this.log(`${left} alert(s) were still being delivered after ${Math.round(timeoutMs / 1000)}s; stopping them`);
    const stopped = new AbortController();
    await Promise.race([Promise.allSettled([...this.inFlight]), sleep(STOP_GRACE_MS, undefined, { signal: stopped.signal }).catch(() => undefined)]);
    stopped.abort();
  }

  private enqueue(run: RunRecord, notify: NotifySpec, summarize: () => Promise<AlertSummary>): void {
    if (this.stopping.signal.aborted) {
      this.note(run, `an alert was not sent: this process is exiting`, true);
      return;
    }
    const previous = this.runQueues.get(run.id) ?? Promise.resolve();
    const delivery = previous.then(async () => {
      try {
        await this.deliver(run, notify, await summarize());
      } catch (error) {
        this.note(run, `an alert could not be prepared: ${(error as Error).message}`, true);
      }
    });
    this.runQueues.set(run.id, delivery);
    this.inFlight.add(delivery);
    void delivery.finally(() => {
      this.inFlight.delete(delivery);
      if (this.runQueues.get(run.id) === delivery) this.runQueues.delete(run.id);
    });
  }

  private async deliver(run: RunRecord, notify: NotifySpec, summary: AlertSummary): Promise<void> {
    const body = JSON.stringify(summary);
    const what = summary.event === 'task_failed' ? `the task_failed alert of task ${summary.task.name}` : `the ${summary.event} alert`;
    const signal = this.stopping.signal;
    await Promise.all([
      notify.webhook === null
        ? undefined
        : postWebhook(notify.webhook, body, { signal }).then((outcome) => {
            const where = `the webhook at ${webhookOrigin(notify.webhook!)}`;
            if (outcome.delivered) this.note(run, `${what} of run ${run.id} was delivered to ${where} (try ${outcome.tries}, ${outcome.status})`, false);
            else
              this.note(
                run,
                `${what} of run ${run.id} could not be delivered to ${where} after ${outcome.tries} tr${outcome.tries === 1 ? 'y' : 'ies'}: ${outcome.error}`,
                true,
              );
          }),
      notify.command === null
        ? undefined
        : runAlertCommand(notify.command, body, {
            signal,
            cwd: existsSync(run.spec.baseDir) ? run.spec.baseDir : process.cwd(),
            env: { FANOUT_EVENT: summary.event, FANOUT_RUN: String(run.id), FANOUT_JOB: run.job },
          }).then((outcome) => {
            if (outcome.delivered) this.note(run, `${what} of run ${run.id} was handed to notify.command`, false);
            else this.note(run, `notify.command failed on ${what} of run ${run.id}: ${outcome.error}`, true);
          }),
    ]);
  }

  /** Every delivery is noted in the run's folder; a failure is also said where the process logs. */
  private note(run: RunRecord, line: string, failure: boolean): void {
    if (failure) this.log(line);
    const runDir = this.options.layout.runDir(run);
    // An object cannot be appended to: a run kept in object storage has no alerts.log.
    if (!this.storage.isLocal(runDir)) return;
    try {
      mkdirSync(runDir, { recursive: true });
      appendFileSync(join(runDir, ALERT_LOG), `${new Date().toISOString()} ${line}\n`);
    } catch {
      // The note is a convenience; the line above (for a failure) is the record.
    }
  }
}

/** Stored specs of runs recorded before alerts existed have no `notify`. */
function notifyOf(run: RunRecord): NotifySpec | null {
  return run.spec.notify ?? null;
}

/** The applied results whose task failed with no retry left. */
function failedForGood(applied: ResultChange[], nameOf: (index: number) => string | undefined): FailedTaskSummary[] {
  return applied
    .filter((change) => change.task.state === 'failed')
    .map((change) => ({
      name: nameOf(change.index) ?? String(change.index),
      index: change.index,
      attempts: change.attempt,
      reason: change.result.reason,
      exitCode: change.result.exitCode,
      error: change.result.error ?? null,
    }));
}
