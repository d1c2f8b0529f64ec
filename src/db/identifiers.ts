import { PreforkError } from '../errors.js';

const schemaPattern = /^[a-z_][a-z0-9_]{0,47}$/;

/** Schema names are configuration, not data: validate once, then quote. Values are always parameters. */
export function assertSchemaName(schema: string): string {
  if (!schemaPattern.test(schema)) {
    throw new PreforkError(
      'INVALID_OPTION',
      `invalid schema name "${schema}": use lower-case letters, digits and _ (at most 48 characters, not starting with a digit)`,
      { exitCode: 2 },
    );
  }
  // prefork's tables have plain names (tasks, migrations, supervisors): in a schema shared with the application
  // they would meet its own. pg_* and information_schema are the server's.
  if (schema === 'public' || schema === 'information_schema' || schema.startsWith('pg_')) {
    throw new PreforkError('INVALID_OPTION', `schema "${schema}" is not for prefork: give its queue a schema of its own (default prefork)`, { exitCode: 2 });
  }
  return schema;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** NOTIFY channels of one prefork schema. */
export interface Channels {
  /** New or requeued tasks: wakes the supervisors. */
  wake: string;
  /** Tasks that reached a final state; payload is a comma-separated list of ids. */
  done: string;
  /** Commands for supervisors (stop); payload is JSON. */
  control: string;
}

export function channelsFor(schema: string): Channels {
  return { wake: `${schema}:wake`, done: `${schema}:done`, control: `${schema}:control` };
}
