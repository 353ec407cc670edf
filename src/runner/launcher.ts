import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { ATTEMPT_REASONS, type AttemptReason } from '../job/job-spec.js';
import { launcherPath } from './launcher-binary.js';

/**
 * The coordinator's handle on native/launcher.c, the one long-lived process that starts and
 * supervises attempts. Node's own spawn blocks the event loop for about a millisecond per child
 * and takes its children down with it; the launcher does neither.
 *
 * Protocol. Requests on the launcher's stdin are NUL-terminated fields:
 *   run ␀ id ␀ attemptDir ␀ cwd ␀ stagingOut ␀ finalOut ␀ memory ␀ timeMs ␀ graceMs ␀
 *       command ␀ envCount ␀ (KEY=VALUE ␀){envCount}
 *   cancel ␀ id ␀        (SIGTERM the group, SIGKILL after its grace)
 *   kill ␀ id ␀          (SIGKILL the group now)
 * ("" = no staging/final output, "0" = no memory/time limit.) Replies on its stdout, one per
 * attempt, after its output is committed and its result record written:
 *   done <id> <reason> <exitCode|-> <signal|-> <startedAt> <endedAt> <peakMemory> <cpuMs>[ <error>]
 * where the trailing error text (newlines flattened) comes only with reason `infra`.
 * On stdin EOF the launcher finishes the running attempts, then exits; on SIGTERM it cancels them.
 */

export interface LaunchRequest {
  /** Unique among the attempts in flight on this launcher. */
  id: number;
  /** Created if missing; receives .fanout.out, .fanout.err and .fanout.result.json. */
  attemptDir: string;
  /** Created if missing. */
  cwd: string;
  /** Folder the task writes its output into; created if missing. */
  stagingOut?: string;
  /** Where stagingOut is moved when the attempt succeeds; its parent should exist. */
  finalOut?: string;
  memory: number | null;
  timeMs: number | null;
  /** Between SIGTERM and SIGKILL, on timeout and cancel. */
  graceMs: number;
  /** Run as `/bin/sh -c command`. */
  command: string;
  /** Added to (and overriding) the launcher's environment. */
  env: Record<string, string>;
}

export interface AttemptResult {
  reason: AttemptReason;
  exitCode: number | null;
  signal: string | null;
  /** Epoch ms. */
  startedAt: number;
  endedAt: number;
  /**
   * Bytes: the larger of the sampled process-group RSS sum and the kernel's max RSS; null where
   * nothing measured it (a lost attempt, a cluster node without cgroups or GNU time).
   */
  peakMemory: number | null;
  cpuMs: number;
  host: string;
  /** Only with reasons `infra`, `lost` and `cancelled`. */
  error?: string;
  /** Lost before its command ever ran (its array element ended first): not the task's failure. */
  notStarted?: boolean;
}

export interface LauncherExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Attempts launched but never reported; their tasks may still be running, unsupervised. */
  pending: number[];
}

export type DoneListener = (id: number, result: AttemptResult) => void;
export type ExitListener = (exit: LauncherExit) => void;

function checkField(what: string, value: string): string {
  if (value.includes('\0')) throw new TypeError(`fanout: ${what} contains a NUL character`);
  return value;
}

function limit(value: number | null, what: string): string {
  if (value === null) return '0';
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`fanout: ${what} must be positive, got ${value}`);
  return String(Math.ceil(value));
}

function encodeRun(request: LaunchRequest): string {
  const { id } = request;
  const env = Object.entries(request.env).map(([key, value]) => {
    if (key === '' || key.includes('=')) throw new TypeError(`fanout: invalid environment variable name "${key}"`);
    return checkField(`environment variable ${key}`, `${key}=${value}`);
  });
  if (!Number.isFinite(request.graceMs) || request.graceMs < 0) {
    throw new RangeError(`fanout: graceMs must be zero or more, got ${request.graceMs}`);
  }
  const fields = [
    'run',
    String(id),
    checkField('attemptDir', request.attemptDir),
    checkField('cwd', request.cwd),
    checkField('stagingOut', request.stagingOut ?? ''),
    checkField('finalOut', request.finalOut ?? ''),
    limit(request.memory, 'memory'),
    limit(request.timeMs, 'timeMs'),
    String(Math.ceil(request.graceMs)),
    checkField('command', request.command),
    String(env.length),
    ...env,
  ];
  return `${fields.join('\0')}\0`;
}

export class Launcher {
  readonly pid: number;
  readonly #child: ChildProcess;
  readonly #host = hostname();
  readonly #inFlight = new Set<number>();
  readonly #doneListeners = new Set<DoneListener>();
  readonly #exitListeners = new Set<ExitListener>();
  readonly #exited: Promise<LauncherExit>;
  #exit: LauncherExit | null = null;
  #queue: string[] = [];
  #flushScheduled = false;
  #draining = false;
  #closing = false;
  #partialLine = '';

  private constructor(child: ChildProcess, pid: number) {
    this.#child = child;
    this.pid = pid;
    const { stdin, stdout } = child;
    if (!stdin || !stdout) throw new Error('fanout: the launcher has no pipes');
    // A dead launcher shows up as 'close' below; a failed write to it has nothing to add.
    stdin.on('error', () => {});
    stdout.setEncoding('utf8');
    stdout.on('data', (chunk: string) => this.#onData(chunk));
    let spawnError: Error | undefined;
    child.on('error', (error) => {
      spawnError = error;
    });
    this.#exited = new Promise((resolve) => {
      // 'close' waits for stdout to end, so every `done` line is delivered before the exit.
      child.on('close', (code, signal) => {
        if (spawnError && code === null && signal === null) code = -1;
        const exit: LauncherExit = { code, signal, pending: [...this.#inFlight] };
        this.#exit = exit;
        this.#inFlight.clear();
        for (const listener of this.#exitListeners) listener(exit);
        resolve(exit);
      });
    });
  }

  /** Starts a launcher in its own session, so a terminal's Ctrl-C reaches neither it nor its tasks. */
  static start(options: { env?: NodeJS.ProcessEnv } = {}): Launcher {
    const child = spawn(launcherPath(), [], {
      detached: true,
      stdio: ['pipe', 'pipe', 'inherit'],
      env: options.env ?? process.env,
    });
    if (child.pid === undefined) {
      child.on('error', () => {});
      throw new Error(`fanout: could not start its process launcher ${launcherPath()}`);
    }
    return new Launcher(child, child.pid);
  }

  /** Attempts launched and not yet reported. */
  get inFlight(): ReadonlySet<number> {
    return this.#inFlight;
  }

  get exited(): boolean {
    return this.#exit !== null;
  }

  onDone(listener: DoneListener): () => void {
    this.#doneListeners.add(listener);
    return () => this.#doneListeners.delete(listener);
  }

  onExit(listener: ExitListener): () => void {
    this.#exitListeners.add(listener);
    return () => this.#exitListeners.delete(listener);
  }

  launch(request: LaunchRequest): void {
    if (!Number.isSafeInteger(request.id) || request.id < 0) {
      throw new RangeError(`fanout: attempt id must be a non-negative integer, got ${request.id}`);
    }
    if (this.#exit || this.#closing) throw new Error('fanout: the launcher is closed');
    if (this.#inFlight.has(request.id)) throw new Error(`fanout: attempt ${request.id} is already running`);
    const encoded = encodeRun(request);
    this.#inFlight.add(request.id);
    this.#send(encoded);
  }

  /** SIGTERM the attempt's process group, SIGKILL after its grace; `force` skips the grace. */
  cancel(id: number, options: { force?: boolean } = {}): void {
    if (!this.#inFlight.has(id) || this.#exit) return;
    this.#send(`${options.force ? 'kill' : 'cancel'}\0${id}\0`);
  }

  /**
   * Stops sending requests; the launcher finishes the attempts in flight, reports them, and
   * exits. Resolves when it has.
   */
  close(): Promise<LauncherExit> {
    if (!this.#closing && !this.#exit) {
      this.#closing = true;
      this.#flush();
      // While draining, the 'drain' handler sends the rest and ends the stream.
      if (!this.#draining) this.#child.stdin?.end();
    }
    return this.#exited;
  }

  /** Cancels every attempt in flight (SIGTERM to the launcher) and resolves when it has exited. */
  terminate(): Promise<LauncherExit> {
    if (!this.#exit) this.#child.kill('SIGTERM');
    return this.#exited;
  }

  #send(text: string): void {
    this.#queue.push(text);
    if (this.#flushScheduled || this.#draining) return;
    this.#flushScheduled = true;
    // Everything launched in one turn of the event loop goes out as one write.
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    const stdin = this.#child.stdin;
    if (this.#draining || this.#queue.length === 0 || !stdin || stdin.writableEnded) return;
    const data = this.#queue.join('');
    this.#queue = [];
    if (!stdin.write(data)) {
      this.#draining = true;
      stdin.once('drain', () => {
        this.#draining = false;
        this.#flush();
        if (this.#closing && !this.#draining && !stdin.writableEnded) stdin.end();
      });
    }
  }

  #onData(chunk: string): void {
    const text = this.#partialLine + chunk;
    const lines = text.split('\n');
    this.#partialLine = lines.pop() ?? '';
    for (const line of lines) if (line) this.#onLine(line);
  }

  #onLine(line: string): void {
    const parts = line.split(' ');
    const [verb, idText, reason, exitCode, signal, startedAt, endedAt, peakMemory, cpuMs] = parts;
    if (verb !== 'done' || cpuMs === undefined || reason === undefined || !ATTEMPT_REASONS.has(reason)) {
      process.stderr.write(`fanout: unexpected line from the launcher: ${line}\n`);
      return;
    }
    const id = Number(idText);
    const result: AttemptResult = {
      reason: reason as AttemptReason,
      exitCode: exitCode === '-' ? null : Number(exitCode),
      signal: signal === '-' || signal === undefined ? null : signal,
      startedAt: Number(startedAt),
      endedAt: Number(endedAt),
      peakMemory: Number(peakMemory),
      cpuMs: Number(cpuMs),
      host: this.#host,
    };
    if (parts.length > 9) result.error = parts.slice(9).join(' ');
    this.#inFlight.delete(id);
    for (const listener of this.#doneListeners) listener(id, result);
  }
}
