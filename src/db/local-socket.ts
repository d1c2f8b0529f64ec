/**
 * A database URL that names this machine over TCP (localhost, 127.0.0.1, ::1) may be reached over the server's
 * Unix socket instead: no TCP handshake and no loopback stack on every task's connect. The socket is used only
 * when it is there, the same credentials are accepted on it, and it leads to the same server (same postmaster
 * start time and port): a container publishing port 5432 beside a local server on the same port must not be
 * mistaken for it. Anything else keeps the URL as given.
 */
import { statSync } from 'node:fs';
import pg from 'pg';
import type { Queryable } from './queryable.js';

/** Where PostgreSQL servers put their sockets: Debian and Red Hat packages, then the compiled-in default. */
export const socketDirectories = ['/var/run/postgresql', '/run/postgresql', '/tmp'];

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** The same URL over the Unix socket in `dir`, or null when the URL is not a plain TCP URL to this machine. */
export function socketUrlFor(connectionString: string, dirs: readonly string[] = socketDirectories): string | null {
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return null;
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return null;
  // An explicit socket or host list, or TLS asked for: the user chose the transport.
  if (!loopbackHosts.has(url.hostname) || url.searchParams.has('host') || url.searchParams.has('sslmode') || url.searchParams.has('ssl')) return null;
  const port = url.port || '5432';
  const dir = dirs.find((d) => isSocket(`${d}/.s.PGSQL.${port}`));
  if (!dir) return null;
  url.searchParams.set('host', dir);
  return url.toString();
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

const identityQuery = "select pg_postmaster_start_time()::text as started, current_setting('port') as port";

/**
 * The URL task connections should use: the Unix socket's when it answers as the same server as `db` (a
 * connection over `connectionString`), else `connectionString` itself.
 */
export async function preferLocalSocket(
  connectionString: string,
  db: Queryable,
  options: { timeoutMs?: number; dirs?: readonly string[] } = {},
): Promise<{ url: string; socketDir: string | null }> {
  const socketUrl = socketUrlFor(connectionString, options.dirs);
  if (!socketUrl) return { url: connectionString, socketDir: null };
  const timeoutMs = options.timeoutMs ?? 2_000;
  const client = new pg.Client({ connectionString: socketUrl, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, application_name: 'prefork socket check' });
  client.on('error', () => {});
  try {
    await client.connect();
    const [viaSocket, viaTcp] = await Promise.all([client.query(identityQuery), db.query(identityQuery)]);
    const a = viaSocket.rows[0] as { started: string; port: string } | undefined;
    const b = viaTcp.rows[0] as { started: string; port: string } | undefined;
    if (!a || !b || a.started !== b.started || a.port !== b.port) return { url: connectionString, socketDir: null };
    return { url: socketUrl, socketDir: new URL(socketUrl).searchParams.get('host') };
  } catch {
    return { url: connectionString, socketDir: null };
  } finally {
    await client.end().catch(() => {});
  }
}
