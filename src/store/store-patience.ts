import { UserError } from '../errors.js';
import { UNREACHABLE_SOCKET_CODES } from '../network-errors.js';
import { formatDuration, parseDuration } from '../job/units.js';

/**
 * How a process rides out its shared store being unreachable (PostgreSQL restarting, a network
 * blip): every call to the store is retried with backoff while the error is one that passes by
 * itself, the process says once that the store is unreachable and once that it is back, and gives
 * up only after `giveUpMs` of outage. Every caller (workers, a watching `fanout run`, `fanout ui`)
 * goes through the one connection that uses it, so the rule lives here only.
 */

/** Default of FANOUT_STORE_PATIENCE. */
const DEFAULT_STORE_PATIENCE_MS = 10 * 60_000;
/** Backoff between tries during an outage: doubles from the first to the last. */
const FIRST_RETRY_MS = 250;
export const LAST_RETRY_MS = 2_000;

/** Node's socket errors and PostgreSQL's SQLSTATEs that say the server is (for now) out of reach. */
const TRANSIENT_CODES = new Set([
  ...UNREACHABLE_SOCKET_CODES,
  // connection_exception and its kinds
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  // admin_shutdown, crash_shutdown, cannot_connect_now (starting up, shutting down, recovering)
  '57P01',
  '57P02',
  '57P03',
  // too_many_connections: others hold them for now
  '53300',
]);
/** What node-postgres says, with no code, when a connection dies under it or never opens. */
const TRANSIENT_MESSAGES = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i;

/** True for an error that says the store is out of reach for now, not that the call was wrong. */
function isTransientStoreError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e !== null && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
    if (e instanceof Error && TRANSIENT_MESSAGES.test(e.message)) return true;
    // Node 20 tries every address of a host name and reports all the refusals at once.
    if (e instanceof AggregateError && e.errors.some(isTransientStoreError)) return true;
  }
  return false;
}

/** FANOUT_STORE_PATIENCE: how long to wait for an unreachable store before giving up. */
export function storePatienceMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.FANOUT_STORE_PATIENCE;
  if (text === undefined || text === '') return DEFAULT_STORE_PATIENCE_MS;
  const ms = parseDuration(text);
  if (ms === null) throw new UserError(`FANOUT_STORE_PATIENCE=${text} is not a duration`, 'set it to a duration such as 30s, 10m or 1h');
  return ms;
}

export class StorePatience {
  /** When the current outage began (the first failed try); null while the store answers. */
  private unreachableSince: number | null = null;
  /** When the store last came back; null while this process never saw it go away. */
  private reachableSince: number | null = null;
  /** Once given up, a call tries once and fails at once: the process is on its way out. */
  private gaveUp = false;

  constructor(
    private readonly options: {
      /** The store, fit to print (no password). */
      name: string;
      giveUpMs: number;
      /** Where the process says the store went away and came back (one line each). */
      say: (line: string) => void;
    },
  ) {}

  /** How long the store has answered since this process last saw it unreachable; 0 during an outage, Infinity if it never saw one. */
  reachableFor(now = Date.now()): number {
    if (this.unreachableSince !== null) return 0;
    return this.reachableSince === null ? Infinity : now - this.reachableSince;
  }

  /** Run `work`, trying again with backoff while the store is unreachable, up to the patience. */
  async call<T>(work: () => Promise<T>): Promise<T> {
    for (let retry = FIRST_RETRY_MS; ; retry = Math.min(retry * 2, LAST_RETRY_MS)) {
      try {
        const result = await work();
        this.reached();
        return result;
      } catch (error) {
        if (!isTransientStoreError(error)) throw error;
        const since = this.unreachable(error);
        if (this.gaveUp || Date.now() - since >= this.options.giveUpMs) throw this.giveUp(error, since);
        await new Promise((resolve) => setTimeout(resolve, retry));
      }
    }
  }

  private unreachable(error: unknown): number {
    if (this.unreachableSince === null) {
      this.unreachableSince = Date.now();
      this.options.say(
        `the store ${this.options.name} is unreachable (${reasonOf(error)}); running tasks go on, and fanout keeps trying for up to ${formatDuration(this.options.giveUpMs)}`,
      );
    }
    return this.unreachableSince;
  }

  private reached(): void {
    if (this.unreachableSince === null) return;
    const outage = Date.now() - this.unreachableSince;
    this.unreachableSince = null;
    this.reachableSince = Date.now();
    this.gaveUp = false;
    this.options.say(`the store ${this.options.name} is back after ${formatDuration(outage)}`);
  }

  private giveUp(error: unknown, since: number): UserError {
    this.gaveUp = true;
    return new UserError(
      `the store ${this.options.name} has been unreachable for ${formatDuration(Date.now() - since)} (${reasonOf(error)}); gave up`,
      'check that PostgreSQL is running and reachable, then start this again (FANOUT_STORE_PATIENCE sets how long to wait, now ' +
        `${formatDuration(this.options.giveUpMs)})`,
      { cause: error },
    );
  }
}

function reasonOf(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message || String(code);
}
