import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export { isProcessAlive } from '../process-alive.js';

/**
 * A small JSON file by which other CLI invocations find a running supervisor's embedded server.
 * Default layout, relative to the working directory: `.prefork/pgdata` and `.prefork/state.json`.
 */

export const DEFAULT_BASE_DIR = '.prefork';
export const DEFAULT_DATA_DIR_NAME = 'pgdata';
export const DEFAULT_STATE_FILE_NAME = 'state.json';

export interface EmbeddedState {
  readonly version: 1;
  /** Never holds a password: the embedded server trusts local connections. */
  readonly connectionString: string;
  readonly dataDir: string;
  readonly postgresPid: number;
  readonly supervisorPid: number;
  /** ISO 8601. */
  readonly startedAt: string;
}

export interface DefaultPaths {
  readonly baseDir: string;
  readonly dataDir: string;
  readonly stateFile: string;
}

export function defaultPaths(cwd: string = process.cwd()): DefaultPaths {
  const baseDir = path.resolve(cwd, DEFAULT_BASE_DIR);
  return {
    baseDir,
    dataDir: path.join(baseDir, DEFAULT_DATA_DIR_NAME),
    stateFile: path.join(baseDir, DEFAULT_STATE_FILE_NAME),
  };
}

/** The layout around any data dir: the state file sits beside it, in `<dirname(dataDir)>/state.json`. */
export function pathsFor(dataDir: string): DefaultPaths {
  const resolved = path.resolve(dataDir);
  const baseDir = path.dirname(resolved);
  return { baseDir, dataDir: resolved, stateFile: path.join(baseDir, DEFAULT_STATE_FILE_NAME) };
}

/** Writes atomically (temp file + rename), so a reader never sees half a file. */
export async function writeStateFile(file: string, state: EmbeddedState): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new Error(`could not write state file ${file}`, { cause: error });
  }
}

/** The state, or null when there is no state file. A file that is not a version-1 state is an error. */
export async function readStateFile(file: string): Promise<EmbeddedState | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`could not read state file ${file}`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`state file ${file} is not valid JSON; remove it`, { cause: error });
  }
  if (!isEmbeddedState(parsed)) throw new Error(`state file ${file} is not a prefork version 1 state file; remove it`);
  return parsed;
}

export async function removeStateFile(file: string): Promise<void> {
  await rm(file, { force: true });
}

function isEmbeddedState(value: unknown): value is EmbeddedState {
  if (typeof value !== 'object' || value === null) return false;
  const state = value as Record<string, unknown>;
  return (
    state.version === 1 &&
    typeof state.connectionString === 'string' &&
    typeof state.dataDir === 'string' &&
    Number.isInteger(state.postgresPid) &&
    Number.isInteger(state.supervisorPid) &&
    typeof state.startedAt === 'string'
  );
}
