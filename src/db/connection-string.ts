/** Connection strings appear in logs and errors only through `redactConnectionString`. */
import pg from 'pg';
import { PreforkError } from '../errors.js';

// A WHATWG URL with a user must have a host, but libpq and pg take "postgres://user@/db?host=/var/run/postgresql"
// (the socket directory in the query): pg parses it with a stand-in host, and so do we, to accept what pg accepts.
const standInHost = '___DUMMY___';

/** The URL as pg parses it (throws as `new URL` does); `hostless` when it names no host. */
function parseUrl(connectionString: string): { url: URL; hostless: boolean } {
  try {
    return { url: new URL(connectionString), hostless: false };
  } catch (error) {
    if (!connectionString.includes('@/')) throw error;
    return { url: new URL(connectionString.replace('@/', `@${standInHost}/`)), hostless: true };
  }
}

export function redactConnectionString(connectionString: string): string {
  try {
    const { url, hostless } = parseUrl(connectionString);
    if (url.password) url.password = '***';
    for (const key of ['password', 'sslpassword']) {
      if (url.searchParams.has(key)) url.searchParams.set(key, '***');
    }
    return hostless ? url.toString().replace(`@${standInHost}/`, '@/') : url.toString();
  } catch {
    // Not a URL (a libpq key=value string, or a malformed URL): blank out anything that looks like a password.
    return connectionString.replace(/(password\s*=\s*)(\S+)/gi, '$1***').replace(/(:\/\/[^:/@\s]*:)[^@\s]*@/, '$1***@');
  }
}

/**
 * Why a connection string given as a URL cannot be used, or null. Only `postgres://` and `postgresql://` URLs
 * that parse are accepted; what is not written as a URL (`socket:/path`, a directory) is left to pg.
 */
export function connectionUrlProblem(connectionString: string): string | null {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(connectionString)?.[1]?.toLowerCase();
  // pg reads a URL, or a socket directory and a database name ("/var/run/postgresql mydb"); anything else (a
  // libpq "host=… dbname=…" string, "host:5432", a URL missing "://") it would take as a host named "base".
  if (scheme === undefined) {
    return connectionString.startsWith('/') ? null : 'it is not a PostgreSQL URL (postgres://user@host:5432/db)';
  }
  if (scheme !== 'postgres' && scheme !== 'postgresql') return `"${scheme}://" is not a PostgreSQL URL (postgres://user@host:5432/db)`;
  let url: URL;
  try {
    url = parseUrl(connectionString).url;
  } catch {
    return 'it is not a valid URL (check the port, and percent-encode special characters in the user and password)';
  }
  // What pg itself throws on as it parses the URL, for every connection: a stray "%" it cannot decode (URIError),
  // an SSL file it cannot read (it reads sslcert, sslkey and sslrootcert then). Its own parser decides, so that
  // what pg accepts (a "%" before non-hex characters, which it re-encodes) is accepted here too.
  try {
    new pg.Client({ connectionString });
  } catch (error) {
    if (error instanceof URIError) return 'its user, password or database name has a "%" that does not start a percent-encoded character (write "%" as %25)';
    const e = error as NodeJS.ErrnoException;
    const key = ['sslcert', 'sslkey', 'sslrootcert'].find((k) => e.path !== undefined && url.searchParams.get(k) === e.path);
    if (key && e.code) return `its ${key} file ${e.path} cannot be read (${e.code})`;
    return `pg cannot use it: ${redactSecrets(errorText(error), connectionString)}`;
  }
  return null;
}

/**
 * DATABASE_UNREACHABLE (exit 3), the database's error its cause: `${what}: ${its message}`, without the
 * connection string's password.
 */
export function databaseUnreachable(error: unknown, what: string, connectionString: string | undefined): PreforkError {
  return new PreforkError('DATABASE_UNREACHABLE', `${what}: ${redactSecrets(errorText(error), connectionString)}`, { cause: error, exitCode: 3 });
}

/**
 * An error's message; for Node's happy-eyeballs connect (`localhost` with an IPv6 and an IPv4 address) an
 * AggregateError with an empty one, its errors' messages.
 */
export function errorText(error: unknown): string {
  const e = error as { message?: unknown; errors?: unknown } | null;
  if (typeof e?.message === 'string' && e.message !== '') return e.message;
  if (Array.isArray(e?.errors) && e.errors.length > 0) return [...new Set(e.errors.map((x) => String((x as Error)?.message ?? x)))].join('; ');
  return String(error);
}

/** Replaces every occurrence of the connection string's password in a message. */
export function redactSecrets(message: string, connectionString: string | undefined): string {
  if (!connectionString) return message;
  let password: string | undefined;
  try {
    password = decodeURIComponent(parseUrl(connectionString).url.password) || undefined;
  } catch {
    password = /password\s*=\s*(\S+)/i.exec(connectionString)?.[1];
  }
  let out = message.split(connectionString).join(redactConnectionString(connectionString));
  if (password && password.length >= 3) out = out.split(password).join('***');
  return out;
}
