import type { Command } from 'commander';
import { UserError } from '../../errors.js';
import { isLoopbackHost } from '../../ui/access.js';
import { startUiServer } from '../../ui/ui-server.js';
import { openEngine, type GlobalOptions } from '../cli-context.js';

export const DEFAULT_UI_PORT = 7420;

export function registerUi(program: Command): void {
  program
    .command('ui')
    .description('serve the dashboard: runs, live progress, tasks, logs and plots, in a browser')
    .option('--host <address>', 'address to listen on (default 127.0.0.1; anything else needs the token)', '127.0.0.1')
    .option('--port <n>', `port to listen on (default ${DEFAULT_UI_PORT}; 0 for any free one)`, String(DEFAULT_UI_PORT))
    .action(async (options: GlobalOptions & { host: string; port: string }) => {
      const port = parsePort(options.port, '--port');
      const engine = await openEngine(options);
      try {
        const server = await startUiServer({ engine, host: options.host, port, token: process.env.FANOUT_UI_TOKEN || undefined });
        process.stdout.write(`${announcement(server.url, options.host)}\n`);
        await stopSignal();
        process.stderr.write('fanout ui: stopping\n');
        await server.close();
      } finally {
        await engine.close();
      }
    });
}

export function parsePort(text: string, flag: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new UserError(`${flag} ${text} is not a port`, 'give a number from 0 to 65535 (0: any free one)');
  return port;
}

/** The one line that prints the dashboard's URL (with its token, once). */
export function announcement(url: string, host: string): string {
  const guard = isLoopbackHost(host) ? '' : ' (a token is needed off loopback: open this URL once, or send Authorization: Bearer <token>)';
  return `fanout ui: ${url}${guard}`;
}

function stopSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
