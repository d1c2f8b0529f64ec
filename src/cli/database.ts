/** How CLI commands find and open the database. */
import pg from 'pg';
import { redactConnectionString, redactSecrets } from '../db/connection-string.js';
import { assertSchemaName } from '../db/identifiers.js';
import { migrate } from '../db/migrate.js';
import { PreforkError } from '../errors.js';
import { exitCodes } from './exit-codes.js';

export interface DatabaseFlags {
  databaseUrl?: string | undefined;
  schema?: string | undefined;
}

export interface DatabaseTarget {
  url: string;
  schema: string;
}

export function resolveDatabase(flags: DatabaseFlags, env: NodeJS.ProcessEnv = process.env): DatabaseTarget {
  const url = flags.databaseUrl || env.DATABASE_URL;
  if (!url) {
    throw new PreforkError('NO_DATABASE_URL', 'no database configured: pass --database-url URL or set DATABASE_URL', { exitCode: exitCodes.usage });
  }
  const schema = assertSchemaName(flags.schema || env.PREFORK_SCHEMA || 'prefork');
  return { url, schema };
}

/** Opens one client and makes sure the queue schema is there. Connection failures exit 3, without the password. */
export async function openDatabase(target: DatabaseTarget, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: target.url, application_name: applicationName, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await migrate(client, target.schema);
  } catch (error) {
    await client.end().catch(() => {});
    if (error instanceof PreforkError) throw error;
    throw unreachable(error, target.url);
  }
  return client;
}

export function unreachable(error: unknown, url: string): PreforkError {
  const message = redactSecrets((error as Error)?.message ?? String(error), url);
  return new PreforkError('DATABASE_UNREACHABLE', `cannot use the database at ${redactConnectionString(url)}: ${message}`, {
    cause: error,
    exitCode: exitCodes.unavailable,
  });
}
