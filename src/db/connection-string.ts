/** Connection strings appear in logs and errors only through `redactConnectionString`. */

export function redactConnectionString(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    if (url.password) url.password = '***';
    for (const key of ['password', 'sslpassword']) {
      if (url.searchParams.has(key)) url.searchParams.set(key, '***');
    }
    return url.toString();
  } catch {
    // Not a URL (a libpq key=value string, say): blank out anything that looks like a password.
    return connectionString.replace(/(password\s*=\s*)(\S+)/gi, '$1***');
  }
}

/** Replaces every occurrence of the connection string's password in a message. */
export function redactSecrets(message: string, connectionString: string | undefined): string {
  if (!connectionString) return message;
  let password: string | undefined;
  try {
    password = decodeURIComponent(new URL(connectionString).password) || undefined;
  } catch {
    password = /password\s*=\s*(\S+)/i.exec(connectionString)?.[1];
  }
  let out = message.split(connectionString).join(redactConnectionString(connectionString));
  if (password && password.length >= 3) out = out.split(password).join('***');
  return out;
}
