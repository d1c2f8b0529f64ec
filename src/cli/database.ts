/**
 * How CLI commands find and open the database: --database-url, else DATABASE_URL, else the embedded
 * PostgreSQL of the data dir (--data-dir, PREFORK_DATA_DIR, default ./.prefork/pgdata). `start` runs that
 * server; the other commands find it through the state file its supervisor writes beside the data dir.
 */
import path from 'node:path';
import pg from 'pg';
import { nameOrigin, originOf } from '../config/origins.js';
import { connectionUrlProblem, databaseUnreachable, redactConnectionString } from '../db/connection-string.js';
import { assertSchemaName, quoteIdent } from '../db/identifiers.js';
import { migrate } from '../db/migrate.js';
import { isProcessAlive, pathsFor, readStateFile, type EmbeddedState } from '../embedded/state-file.js';
import { LOCK_FILE_NAME } from '../embedded/supervisor-lock.js';
import { PreforkError } from '../errors.js';
import { exitCodes } from './exit-codes.js';

export interface DatabaseFlags {
  databaseUrl?: string | undefined;
  schema?: string | undefined;
  dataDir?: string | undefined;
}

export const DEFAULT_DATA_DIR = path.join('.prefork', 'pgdata');

/** Where the embedded server keeps its data, and the files beside it. */
export interface EmbeddedPaths {
  readonly dataDir: string;
  /** `<dirname(dataDir)>/state.json`: how other commands find the running server. */
  readonly stateFile: string;
  /** `<dirname(dataDir)>/supervisor.lock`: held by the supervisor that runs the server. */
  readonly lockFile: string;
  /** Whether the data dir came from --data-dir (the hints then repeat it). */
  readonly fromFlag: boolean;
}

export interface DatabaseTarget {
  /** From --database-url or DATABASE_URL; undefined: the embedded server of `embedded`. */
  url: string | undefined;
  /** Where the database came from, for the logs. */
  source: '--database-url' | 'DATABASE_URL' | 'embedded';
  schema: string;
  embedded: EmbeddedPaths;
}

export function resolveDatabase(flags: DatabaseFlags, env: NodeJS.ProcessEnv = process.env): DatabaseTarget {
  // Given and empty (`--schema ""`, an unset shell variable): a slip, not a request for the default.
  if (flags.schema === '') throw new PreforkError('INVALID_OPTION', '--schema must not be empty', { exitCode: exitCodes.usage });
  if (flags.databaseUrl === '') throw new PreforkError('BAD_DATABASE_URL', '--database-url must not be empty', { exitCode: exitCodes.usage });
  const schema = assertSchemaName(flags.schema || env.PREFORK_SCHEMA || 'prefork');
  if (flags.dataDir !== undefined && flags.dataDir.trim() === '') {
    throw new PreforkError('BAD_DATA_DIR', '--data-dir must not be empty', { exitCode: exitCodes.usage });
  }
  const url = flags.databaseUrl || env.DATABASE_URL || undefined;
  // Values may come from the environment or a config file (src/config); a data dir that did not come from
  // this command line is an ambient setting, and yields to a database URL.
  const urlOrigin = originOf(flags, 'databaseUrl');
  const problem = url ? connectionUrlProblem(url) : null;
  if (url && problem) {
    const from = flags.databaseUrl ? nameOrigin(urlOrigin, 'databaseUrl', '--database-url') : 'DATABASE_URL';
    throw new PreforkError('BAD_DATABASE_URL', `${from} ${redactConnectionString(url)}: ${problem}`, { exitCode: exitCodes.usage });
  }
  const dataDirOnCommandLine = flags.dataDir !== undefined && (originOf(flags, 'dataDir')?.source ?? 'flag') === 'flag';
  if (url && dataDirOnCommandLine) {
    const from = flags.databaseUrl ? nameOrigin(urlOrigin, 'databaseUrl', '--database-url') : 'DATABASE_URL';
    throw new PreforkError('DATA_DIR_WITH_URL', `--data-dir is for the embedded PostgreSQL, which is not used when ${from} is given`, {
      exitCode: exitCodes.usage,
    });
  }
  const { dataDir, stateFile, baseDir } = pathsFor(flags.dataDir || env.PREFORK_DATA_DIR || DEFAULT_DATA_DIR);
  return {
    url,
    source: flags.databaseUrl && urlOrigin?.from !== 'DATABASE_URL' ? '--database-url' : url ? 'DATABASE_URL' : 'embedded',
    schema,
    embedded: { dataDir, stateFile, lockFile: path.join(baseDir, LOCK_FILE_NAME), fromFlag: dataDirOnCommandLine },
  };
}

export interface LocatedDatabase {
  url: string;
  /** The running supervisor's embedded server, when that is the database. */
  state: EmbeddedState | null;
}

/** The URL to connect to: the configured one, or that of the embedded server a supervisor runs here. */
export async function locateDatabase(target: DatabaseTarget): Promise<LocatedDatabase> {
  if (target.url) return { url: target.url, state: null };
  const { stateFile, dataDir } = target.embedded;
  let state: EmbeddedState | null;
  try {
    state = await readStateFile(stateFile);
  } catch (error) {
    throw new PreforkError('BAD_STATE_FILE', (error as Error).message, { cause: error, exitCode: exitCodes.unavailable });
  }
  if (!state || !isProcessAlive(state.supervisorPid)) {
    throw new PreforkError('NO_SUPERVISOR_HERE', noSupervisorHere(target.embedded), { exitCode: exitCodes.unavailable });
  }
  if (!isProcessAlive(state.postgresPid)) {
    // The supervisor lives, its server does not: it is starting it again (or giving up and stopping).
    throw new PreforkError(
      'EMBEDDED_DOWN',
      `the prefork supervisor running here (pid ${state.supervisorPid}) lost its embedded PostgreSQL (pid ${state.postgresPid}) and is starting it again: try again in a moment, or see its log`,
      { exitCode: exitCodes.unavailable },
    );
  }
  if (path.resolve(state.dataDir) !== dataDir) {
    throw new PreforkError(
      'OTHER_DATA_DIR',
      `the prefork supervisor running here (pid ${state.supervisorPid}) uses the data dir ${displayPath(state.dataDir)}, not ${displayPath(dataDir)}`,
      { exitCode: exitCodes.unavailable },
    );
  }
  return { url: state.connectionString, state };
}

/** For a send or a pause on a schema no supervisor ever ran on: a --schema typo, or ahead of the first start. */
export function unservedSchemaWarning(schema: string, what: 'the task waits queued' | 'the tasks wait queued' | 'paused'): string {
  const flag = schema === 'prefork' ? '' : ` --schema ${schema}`;
  const until = what === 'paused' ? 'paused for when one does' : `${what} until one does`;
  return `prefork: warning: no supervisor has ever run on schema "${schema}" of this database; ${until} (prefork start${flag})\n`;
}

export function noSupervisorHere(paths: EmbeddedPaths): string {
  const start = `npx prefork start${paths.fromFlag ? ` --data-dir ${displayPath(paths.dataDir)}` : ''}`;
  return (
    `no database configured and no prefork supervisor is running here (${displayPath(paths.stateFile)}): ` +
    `start one with "${start}", or pass --database-url / set DATABASE_URL`
  );
}

/**
 * Opens one client and makes sure the queue schema is there (created on first use). With `existing`, for the
 * commands that only read or steer what runs, a schema that holds no queue is an error (exit 3) and is not
 * created: `status --schema prefrok` says so instead of making an empty queue. Connection failures exit 3,
 * without the password.
 */
export async function openDatabase(target: DatabaseTarget, applicationName: string, options: { existing?: boolean } = {}): Promise<pg.Client> {
  const url = target.url ?? (await locateDatabase(target)).url;
  const client = new pg.Client({ connectionString: url, application_name: applicationName, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    if (options.existing) {
      const { rows } = await client.query<{ present: boolean }>('select to_regclass($1) is not null as present', [`${quoteIdent(target.schema)}.migrations`]);
      if (!rows[0]?.present) {
        const flag = target.schema === 'prefork' ? '' : ` --schema ${target.schema}`;
        throw new PreforkError('NO_QUEUE', `no prefork queue in schema "${target.schema}" of this database: nothing was ever started or sent there (prefork start${flag} creates it)`, {
          exitCode: exitCodes.unavailable,
        });
      }
    }
    await migrate(client, target.schema);
  } catch (error) {
    await client.end().catch(() => {});
    if (error instanceof PreforkError) throw error;
    throw unreachable(error, url);
  }
  return client;
}

export function unreachable(error: unknown, url: string): PreforkError {
  return databaseUnreachable(error, `cannot use the database at ${redactConnectionString(url)}`, url);
}

/** Relative to the working directory when inside it (`.prefork/state.json`), else absolute. */
export function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}
