import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

const POLL_MS = 20;

export interface ServerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the program could not be started at all. */
  readonly error?: Error;
}

/**
 * Resolves once the server accepts a connection on `connectionString`. Rejects, with the tail of the server
 * log, when the server exits first or `timeoutMs` passes.
 */
export async function waitUntilAccepting(
  connectionString: string,
  exited: Promise<ServerExit>,
  logFile: string,
  timeoutMs: number,
): Promise<void> {
  let exit: ServerExit | undefined;
  void exited.then((value) => {
    exit = value;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exit?.error) throw new Error(`PostgreSQL could not be started: ${exit.error.message}`, { cause: exit.error });
    if (exit) {
      const how = exit.signal ?? `exit code ${exit.code}`;
      throw new Error(`PostgreSQL exited during start-up (${how}); server log:\n${await logTail(logFile)}`);
    }
    if (await accepts(connectionString)) return;
    if (Date.now() > deadline) {
      const tail = await logTail(logFile);
      throw new Error(`PostgreSQL did not accept connections within ${timeoutMs} ms; server log:\n${tail}`);
    }
    await sleep(POLL_MS);
  }
}

async function accepts(connectionString: string): Promise<boolean> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The last lines of a log file, for error messages. */
export async function logTail(file: string, lines = 15): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (handle === undefined) return '(no log)';
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 8192);
    const { buffer } = await handle.read(Buffer.alloc(length), 0, length, size - length);
    return buffer.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n') || '(empty log)';
  } finally {
    await handle.close();
  }
}
