// Types of throwaway-postgres.mjs for the TypeScript that imports it (test/services/postgres.ts).

export declare const HOW_TO_GET: string;

export interface ThrowawayPostgresOptions {
  /** false turns fsync off: no durability, fast on slow disks (default true). */
  fsync?: boolean;
  /** The server's max_connections (default 200). */
  maxConnections?: number;
  /** More server settings, passed as `-c name=value`. */
  settings?: Record<string, string | number>;
  /** The folder the cluster's temp folder goes in (default: the system temp folder). */
  parent?: string;
}

export interface ThrowawayPostgres {
  /** The superuser's URL (user `fanout`, random password, database `postgres`). */
  url: string;
  port: number;
  /** The temp folder: data/, socket/, server.log. */
  folder: string;
  /** The postmaster's pid (every server process is its child), null when it is not running. */
  serverPid(): number | null;
  /** Stops the server (fast shutdown) and removes the folder. */
  stop(): Promise<void>;
  /** Stops the server at once (`-m immediate`, as a crash or a power cut would); its data stays. */
  crash(): Promise<void>;
  /** Starts it again (after `crash`) on the same port, with the same settings. */
  restart(): Promise<void>;
}

export declare function startThrowawayPostgres(options?: ThrowawayPostgresOptions): Promise<ThrowawayPostgres>;
export declare function findServerBinaries(): string | null;
export declare function createDatabase(adminUrl: string, name: string): Promise<string>;
