import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine } from '../engine/engine.js';
import type { RunHandle } from '../engine/run-handle.js';
import { UserError } from '../errors.js';
import { accessFor, refusal, tokenCookie, tokenInQuery, type Access } from './access.js';
import { ApiError, handleApi, sendJson } from './api-routes.js';
import { RunActions } from './run-actions.js';
import { RunEvents } from './run-events.js';
import { PlotCache } from './run-plots.js';

/** The page: three static files, no build step (src/ui and dist/ui both sit two levels below the package). */
const WEB_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');
const PAGE_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};
/** The page loads nothing from elsewhere and runs no inline script. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export interface UiServerOptions {
  engine: Engine;
  host?: string;
  /** 0: any free port. */
  port?: number;
  /** Required on every request when set; made up when the host is not loopback. */
  token?: string;
  /** How often the event stream reads the store. */
  eventPollMs?: number;
  /** The run this process drives (`fanout run --ui`), which the dashboard's cancel stops here. */
  driving?: RunHandle;
}

export interface UiServer {
  /** Where to open it; with `?token=` when a token is needed. */
  readonly url: string;
  readonly token: string | null;
  readonly port: number;
  /** Stop serving, stop what it drives (retries are cancelled), and wait for that to settle. */
  close(): Promise<void>;
}

export async function startUiServer(options: UiServerOptions): Promise<UiServer> {
  const host = options.host ?? '127.0.0.1';
  const access = accessFor(host, options.token);
  const actions = new RunActions(options.engine);
  if (options.driving) actions.adopt(options.driving);
  const context = {
    engine: options.engine,
    files: options.engine.files,
    actions,
    plots: new PlotCache(),
    events: new RunEvents(options.engine, options.eventPollMs),
  };
  const server = createServer((request, response) => {
    serve(access, context, request, response).catch((error: unknown) => sendError(response, error));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new UserError(`port ${options.port} on ${host} is in use`, 'pick another with --port, or --port 0 for any free one') : error),
    );
    server.listen(options.port ?? 0, host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shownHost}:${port}/${access.token === null ? '' : `?token=${encodeURIComponent(access.token)}`}`;
  return {
    url,
    token: access.token,
    port,
    close: () => closeServer(server, actions),
  };
}

async function serve(access: Access, context: Parameters<typeof handleApi>[0], request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://dashboard');
  const refused = refusal(access, request);
  // The printed URL carries the token once: keep it in a cookie, and drop it from the address bar.
  if (refused?.status === 401 && request.method === 'GET' && PAGE_FILES[url.pathname] && tokenInQuery(access, url)) {
    response.writeHead(303, { location: url.pathname, 'set-cookie': tokenCookie(access.token!), 'cache-control': 'no-store' });
    response.end();
    return;
  }
  if (refused) {
    response.setHeader('www-authenticate', 'Bearer realm="fanout"');
    return sendJson(response, { error: refused.message }, refused.status);
  }
  if (url.pathname.startsWith('/api/')) return handleApi(context, request, response, url);
  const page = PAGE_FILES[url.pathname];
  if (!page || request.method !== 'GET') throw new ApiError(404, `nothing at ${url.pathname}`);
  const body = await pageFile(page.file);
  response.writeHead(200, {
    'content-type': page.type,
    'content-length': body.length,
    'cache-control': 'no-cache',
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  response.end(body);
}

const pageFiles = new Map<string, Promise<Buffer>>();

/** The page's files, read once: they ship with fanout and do not change while it serves. */
function pageFile(name: string): Promise<Buffer> {
  let body = pageFiles.get(name);
  if (!body) {
    body = readFile(join(WEB_DIR, name));
    pageFiles.set(name, body);
  }
  return body;
}

function sendError(response: ServerResponse, error: unknown): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  if (error instanceof ApiError) return sendJson(response, { error: error.message, fix: error.fix ?? null }, error.status);
  // A UserError from the engine (nothing to retry, a gather that cannot run): the request cannot be done as asked.
  if (error instanceof UserError) return sendJson(response, { error: error.message, fix: error.fix ?? null }, 409);
  process.stderr.write(`fanout ui: internal error (a bug in fanout; please report it)\n${(error as Error)?.stack ?? String(error)}\n`);
  sendJson(response, { error: 'internal error; see the output of fanout ui' }, 500);
}

async function closeServer(server: Server, actions: RunActions): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Event streams never end on their own.
  server.closeAllConnections();
  await actions.close();
  await closed;
}
