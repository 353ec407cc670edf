import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/**
 * Who may use the dashboard. On loopback it is whoever can reach this machine's 127.0.0.1, as
 * for any local tool; the Host header must then name a loopback address too, so a web page
 * whose domain was re-pointed at 127.0.0.1 (DNS rebinding) cannot read it. Off loopback (or
 * whenever FANOUT_UI_TOKEN is set) every request carries the token: `Authorization: Bearer`,
 * or the cookie set when the user opens the printed URL with `?token=`. Actions (POST) coming
 * from another site's page are refused either way.
 */
const TOKEN_COOKIE = 'fanout_ui_token';

export interface Access {
  /** Null: no token needed (loopback, none given). */
  token: string | null;
  loopback: boolean;
}

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1';
}

export function accessFor(host: string, givenToken: string | undefined): Access {
  const loopback = isLoopbackHost(host);
  const token = givenToken ? givenToken : loopback ? null : randomBytes(24).toString('base64url');
  return { token, loopback };
}

/** Why a request is refused, or null when it may go on. */
export function refusal(access: Access, request: IncomingMessage): { status: 401 | 403; message: string } | null {
  if (access.loopback) {
    const hostHeader = (request.headers.host ?? '').replace(/:\d+$/, '');
    if (!isLoopbackHost(hostHeader)) return { status: 403, message: `this dashboard serves only its loopback address, not host "${hostHeader}"` };
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    // Browsers send Origin with every cross-site POST: a page elsewhere cannot press the buttons.
    const origin = request.headers.origin;
    if (origin !== undefined && originHost(origin) !== request.headers.host)
      return { status: 403, message: `actions are taken only from the dashboard's own page, not from ${origin}` };
  }
  if (access.token === null) return null;
  const presented = bearer(request) ?? cookie(request, TOKEN_COOKIE);
  if (presented === null) return { status: 401, message: 'a token is required: open the URL fanout ui printed, or send Authorization: Bearer <token>' };
  if (!sameSecret(presented, access.token)) return { status: 401, message: 'wrong token' };
  return null;
}

/** The token in `?token=` when it is the right one (the printed URL): the server then sets the cookie. */
export function tokenInQuery(access: Access, url: URL): boolean {
  const given = url.searchParams.get('token');
  return access.token !== null && given !== null && sameSecret(given, access.token);
}

export function tokenCookie(token: string): string {
  // HttpOnly: scripts never see it; SameSite=Strict: other sites cannot make the browser send it (no CSRF).
  return `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`;
}

function originHost(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

function bearer(request: IncomingMessage): string | null {
  const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
  return match ? match[1]! : null;
}

function cookie(request: IncomingMessage, name: string): string | null {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) {
      try {
        return decodeURIComponent(part.slice(at + 1).trim());
      } catch {
        return null;
      }
    }
  }
  return null;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
