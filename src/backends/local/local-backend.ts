import { Launcher } from '../../runner/launcher.js';
import { lostResult } from '../../runner/result-record.js';
import { identityOf, isAlive, type ProcessIdentity } from '../../process-identity.js';
import type { AttemptLaunch, Capacity, OrphanAttempt, PushBackend, ResultListener } from '../backend.js';
import { localCapacity } from './local-capacity.js';
import { OrphanWatch } from './orphan-watch.js';

export interface LocalBackendOptions {
  /** Hand fanout less of this machine than it has. */
  limits?: Partial<Pick<Capacity, 'cpus' | 'memory'>>;
  /** Between terminate and kill, when an attempt is stopped. */
  graceMs: number;
}

/**
 * Attempts as processes on this machine, started and supervised by one native launcher process
 * that outlives the coordinator if it is killed (see src/runner/launcher.ts).
 */
export class LocalBackend implements PushBackend {
  readonly name = 'local';
  readonly dispatch = 'push';
  /** The launcher reads and writes folders on this machine. */
  readonly objectStorage = false;
  private launcher: Launcher | undefined;
  /** Attempts of earlier coordinators, one watch per launcher that started them. */
  private readonly orphans = new Map<string, OrphanWatch>();
  private onResult: ResultListener = () => {};

  constructor(private readonly options: LocalBackendOptions) {}

  capacity(): Capacity {
    return localCapacity(this.options.limits);
  }

  defaultConcurrency(): null {
    return null;
  }

  async start(onResult: ResultListener): Promise<ProcessIdentity> {
    this.onResult = onResult;
    return identityOf(this.startLauncher().pid);
  }

  private startLauncher(): Launcher {
    const launcher = Launcher.start();
    launcher.onDone((id, result) => this.onResult(id, result));
    // Only a crash of the launcher itself leaves attempts unreported; the engine retries them.
    launcher.onExit(({ pending }) => {
      for (const id of pending) this.onResult(id, lostResult('the launcher process exited unexpectedly'));
    });
    this.launcher = launcher;
    return launcher;
  }

  supervisor(): ProcessIdentity {
    return identityOf(this.liveLauncher().pid);
  }

  /** The launcher, started again if it died: what is submitted next goes to it. */
  private liveLauncher(): Launcher {
    if (!this.launcher) throw new Error('LocalBackend used before start');
    return this.launcher.exited ? this.startLauncher() : this.launcher;
  }

  submit(launches: AttemptLaunch[]): void {
    const launcher = this.liveLauncher();
    for (const launch of launches) {
      launcher.launch({
        id: launch.id,
        attemptDir: launch.attemptDir,
        cwd: launch.cwd,
        stagingOut: launch.stagingOut,
        finalOut: launch.finalOut,
        // Reserved either way; limited and measured here only when the command does not do it itself.
        memory: launch.limitsInside ? null : launch.memory,
        timeMs: launch.timeMs,
        graceMs: this.options.graceMs,
        command: launch.command,
        env: launch.env,
      });
    }
  }

  cancel(ids: number[], options: { force: boolean }): void {
    const watches = [...this.orphans.values()];
    const orphaned = new Set<OrphanWatch>();
    for (const id of ids) {
      const watch = watches.find((candidate) => candidate.has(id));
      if (watch) orphaned.add(watch);
      else this.launcher?.cancel(id, options);
    }
    // Orphans belong to earlier launchers we cannot talk to; each cancels all it runs on SIGTERM.
    for (const watch of orphaned) if (watch.supervisor) signal(watch.supervisor, options.force ? 'SIGKILL' : 'SIGTERM');
  }

  adopt(orphans: OrphanAttempt[], supervisor: ProcessIdentity | null): void {
    const key = JSON.stringify(supervisor);
    let watch = this.orphans.get(key);
    if (!watch) {
      watch = new OrphanWatch(supervisor, (id, result) => this.onResult(id, result));
      this.orphans.set(key, watch);
    }
    watch.add(orphans);
  }

  async close(): Promise<void> {
    for (const watch of this.orphans.values()) watch.stop();
    await this.launcher?.close();
  }
}

function signal(process_: ProcessIdentity, name: NodeJS.Signals): void {
  if (!isAlive(process_)) return;
  try {
    process.kill(process_.pid, name);
  } catch {
    // It ended between the check and the signal: nothing left to stop.
  }
}
