/**
 * `prefork start` without a database URL: the embedded PostgreSQL, its lock and its state file. Started
 * before the supervisor, stopped after it (so running tasks keep their database while they finish).
 */
import { rmSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { ServerStoppingError, startEmbeddedPostgres, type EmbeddedPostgres, type EmbeddedPostgresLogger } from '../embedded/postgres.js';
import { readStateFile, removeStateFile, writeStateFile, type EmbeddedState } from '../embedded/state-file.js';
import { acquireSupervisorLock, LockHeldError, type SupervisorLock } from '../embedded/supervisor-lock.js';
import { coerceError, PreforkError } from '../errors.js';
import { DEFAULT_DATA_DIR, displayPath, type EmbeddedPaths } from './database.js';
import { exitCodes } from './exit-codes.js';

export interface RunningEmbeddedServer {
  readonly server: EmbeddedPostgres;
  readonly state: EmbeddedState;
  /** Stops the server, then removes the state file and the lock. Idempotent. */
  stop(): Promise<void>;
  /** For a process about to exit at once (a forced stop): kills the server, removes the files, synchronously. */
  abandon(): void;
}

const messages: Record<string, string> = {
  embedded_postgres_started: 'embedded PostgreSQL started',
  embedded_postgres_stopped: 'embedded PostgreSQL stopped',
  embedded_postgres_exited: 'embedded PostgreSQL exited on its own',
  embedded_postgres_stop_timeout: 'embedded PostgreSQL did not stop in time; killing it',
  embedded_initdb_redone: 'the data dir held a cluster whose initialisation was interrupted, never started: initialised it again',
};

/** Waits before each attempt to start a server that went away again (the last one fails for good). */
const restartDelaysMs = [0, 500, 1_000, 2_000, 4_000];
/** More unexpected exits than this within `crashWindowMs`: the server is crash-looping; the supervisor stops. */
const maxCrashes = 5;
const crashWindowMs = 5 * 60_000;

export interface EmbeddedServerOptions {
  /** The server went away and could not be started again: the supervisor must stop (nothing can be recorded). */
  onLost?: (error: PreforkError) => void;
}

/**
 * The launcher names its events in the message; our logs carry them as `event`. Its `pid` (the postmaster's)
 * becomes `postgresPid`: every log line's `pid` is the process that wrote it.
 */
function launcherLog(log: Logger): EmbeddedPostgresLogger {
  const fields = (msg: string, obj: object) => {
    const { pid, ...rest } = obj as { pid?: number };
    return { event: msg, ...rest, ...(pid !== undefined && { postgresPid: pid }) };
  };
  return {
    info: (obj, msg = 'embedded_postgres') => log.info(fields(msg, obj), messages[msg] ?? msg),
    warn: (obj, msg = 'embedded_postgres') => log.warn(fields(msg, obj), messages[msg] ?? msg),
  };
}

export async function startEmbeddedServer(paths: EmbeddedPaths, log: Logger, options: EmbeddedServerOptions = {}): Promise<RunningEmbeddedServer> {
  assertDirectoryPath(paths);
  const lock = await acquireLock(paths);
  let server: EmbeddedPostgres | undefined;
  let state: EmbeddedState | undefined;
  const crashes: number[] = [];
  // Killed or crashed under a running supervisor: started again at once on the same socket, so the primary,
  // the workers and the commands (through the state file) find it where it was.
  const onUnexpectedExit = () => {
    if (!server) return;
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && crashes[0]! < now - crashWindowMs) crashes.shift();
    if (crashes.length > maxCrashes) {
      lost(new Error(`it exited ${crashes.length} times in ${crashWindowMs / 60_000} minutes`));
      return;
    }
    void restartServer();
  };
  const restartServer = async () => {
    let last: unknown;
    for (const [i, delayMs] of restartDelaysMs.entries()) {
      if (delayMs > 0) await sleep(delayMs);
      log.warn({ event: 'embedded_postgres_restarting', attempt: i + 1, dataDir: paths.dataDir }, 'starting the embedded PostgreSQL again');
      try {
        await server!.restart();
        state = { ...state!, postgresPid: server!.pid };
        await writeStateFile(paths.stateFile, state);
        log.info({ event: 'embedded_postgres_restarted', attempt: i + 1, postgresPid: server!.pid }, 'the embedded PostgreSQL runs again');
        return;
      } catch (error) {
        last = error;
        if (error instanceof ServerStoppingError) return;
        log.warn({ event: 'embedded_postgres_restart_failed', attempt: i + 1, err: coerceError(error) }, 'the embedded PostgreSQL did not start again');
      }
    }
    lost(last);
  };
  const lost = (cause: unknown) => {
    const message = `the embedded PostgreSQL on ${displayPath(paths.dataDir)} went away and could not be started again: ${firstLine(cause)} (server log: ${displayPath(path.join(paths.dataDir, 'postgres.log'))})`;
    log.fatal({ event: 'embedded_postgres_lost', dataDir: paths.dataDir, err: coerceError(cause) }, message);
    options.onLost?.(new PreforkError('EMBEDDED_LOST', message, { cause, exitCode: exitCodes.unavailable }));
  };
  try {
    const previous = await readStateFile(paths.stateFile).catch(() => null);
    if (previous) {
      const { supervisorPid, postgresPid, startedAt } = previous;
      log.warn({ event: 'stale_state_file', stateFile: paths.stateFile, supervisorPid, postgresPid, startedAt }, 'the previous supervisor here did not stop cleanly; recovering its data dir');
    }
    server = await startEmbeddedPostgres({ dataDir: paths.dataDir, log: launcherLog(log), onUnexpectedExit }).catch((error: unknown) => {
      throw startFailed(paths, error, log);
    });
    state = {
      version: 1,
      connectionString: server.connectionString,
      dataDir: server.dataDir,
      postgresPid: server.pid,
      supervisorPid: process.pid,
      startedAt: new Date().toISOString(),
    };
    await writeStateFile(paths.stateFile, state);
    return handle(server, () => state!, paths, lock, log);
  } catch (error) {
    await server?.stop().catch(() => {});
    await lock.release().catch(() => {});
    if (error instanceof PreforkError) throw error;
    log.fatal({ event: 'embedded_postgres_start_failed', err: error }, (error as Error).message);
    throw new PreforkError('EMBEDDED_START_FAILED', firstLine(error), { cause: error, exitCode: exitCodes.unavailable });
  }
}

/** The data dir, or the first of its parents that exists, must be a directory: a file there is a usage slip. */
function assertDirectoryPath(paths: EmbeddedPaths): void {
  for (let dir = paths.dataDir; ; dir = path.dirname(dir)) {
    let isDirectory: boolean | undefined;
    try {
      isDirectory = statSync(dir).isDirectory();
    } catch {
      // does not exist (yet): look at its parent
    }
    if (isDirectory === false) {
      const what = dir === paths.dataDir ? 'it is a file, not a directory' : `${displayPath(dir)} is a file, not a directory`;
      throw new PreforkError('BAD_DATA_DIR', `--data-dir ${displayPath(paths.dataDir)}: ${what}`, { exitCode: exitCodes.usage });
    }
    if (isDirectory === true || path.dirname(dir) === dir) return;
  }
}

async function acquireLock(paths: EmbeddedPaths): Promise<SupervisorLock> {
  try {
    return await acquireSupervisorLock(paths.lockFile, paths.dataDir);
  } catch (error) {
    if (error instanceof LockHeldError) {
      // Other commands find it without a flag only in the default data dir: elsewhere they need the same one.
      const shown = displayPath(error.holder.dataDir);
      const flag = path.resolve(error.holder.dataDir) === path.resolve(DEFAULT_DATA_DIR) ? '' : ` --data-dir ${/^[\w./-]+$/.test(shown) ? shown : JSON.stringify(shown)}`;
      throw new PreforkError(
        'EMBEDDED_IN_USE',
        `another prefork supervisor (pid ${error.holder.pid}) is running here with the data dir ${shown}: ` +
          `use it (prefork send, status, stop${flag ? ` with${flag}` : ''}), stop it with "npx prefork stop${flag}", or give this one a --data-dir in another directory`,
        { cause: error, exitCode: exitCodes.unavailable },
      );
    }
    throw new PreforkError('EMBEDDED_START_FAILED', `could not lock ${displayPath(paths.lockFile)}: ${firstLine(error)}`, {
      cause: error,
      exitCode: exitCodes.unavailable,
    });
  }
}

/** The launcher's errors can carry the server log's tail: the whole goes to the log, one line to the user. */
function startFailed(paths: EmbeddedPaths, error: unknown, log: Logger): PreforkError {
  log.fatal({ event: 'embedded_postgres_start_failed', dataDir: paths.dataDir, err: coerceError(error) }, 'the embedded PostgreSQL did not start');
  const hasLog = (error as Error)?.message?.includes('\n');
  const where = hasLog ? ` (server log: ${displayPath(path.join(paths.dataDir, 'postgres.log'))})` : '';
  return new PreforkError('EMBEDDED_START_FAILED', `could not start the embedded PostgreSQL on ${displayPath(paths.dataDir)}: ${firstLine(error)}${where}`, {
    cause: error,
    exitCode: exitCodes.unavailable,
  });
}

function firstLine(error: unknown): string {
  return (coerceError(error).message.split('\n')[0] ?? '').replace(/[:;,]\s*$/, '');
}

function handle(server: EmbeddedPostgres, state: () => EmbeddedState, paths: EmbeddedPaths, lock: SupervisorLock, log: Logger): RunningEmbeddedServer {
  let stopping: Promise<void> | undefined;
  const stop = async () => {
    try {
      await server.stop();
    } finally {
      await removeStateFile(paths.stateFile).catch((error: unknown) => log.warn({ event: 'state_file_not_removed', err: error }, 'could not remove the state file'));
      await lock.release().catch(() => {});
    }
  };
  return {
    server,
    get state() {
      return state();
    },
    stop: () => (stopping ??= stop()),
    abandon: () => {
      try {
        // Immediate shutdown; the next start recovers the data dir.
        process.kill(server.pid, 'SIGQUIT');
      } catch {
        // already gone
      }
      rmSync(paths.stateFile, { force: true });
      lock.releaseSync();
    },
  };
}
