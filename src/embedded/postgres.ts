import { type ChildProcess, spawn, type StdioOptions } from 'node:child_process';
import { chown, open } from 'node:fs/promises';
import path from 'node:path';
import { locateBinaries } from './binaries.js';
import { initCluster, prepareDataDir } from './init-cluster.js';
import { removeStaleLockFiles } from './lock-files.js';
import { validateOptions } from './options.js';
import { guardAgainstParentDeath } from './parent-death.js';
import { type RunAs, unprivilegedUser } from './run-as.js';
import { chooseSocketDir, type SocketDir } from './socket-dir.js';
import { spawnOptions } from './spawn-options.js';
import { type ServerExit, waitUntilAccepting } from './wait-ready.js';

export { createDatabase } from './create-database.js';

export interface EmbeddedPostgresLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface EmbeddedPostgresOptions {
  /** Created and initdb'd if empty; reused if it already holds a cluster. */
  dataDir: string;
  /** Extra server settings, passed as `-c name=value`, e.g. `{ max_connections: '20' }`. */
  settings?: Record<string, string>;
  /** Also listen on 127.0.0.1 at this TCP port. Default: Unix socket only (named after port 5432). */
  port?: number;
  log?: EmbeddedPostgresLogger;
  /** The server exited while nobody stopped it (killed, crashed): restart() brings it back on the same socket. */
  onUnexpectedExit?: (exit: ServerExit) => void;
}

export interface EmbeddedPostgres extends AsyncDisposable {
  /** Over the Unix socket: postgres://postgres@localhost:PORT/postgres?host=%2Fsocket%2Fdir */
  readonly connectionString: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly port: number;
  /** The postmaster's pid (a new one after a restart). */
  readonly pid: number;
  /**
   * After an unexpected exit: ends what is left of the old server, then starts it again on the same data
   * dir, socket and port (the connection string stays valid) and waits until it accepts connections.
   */
  restart(): Promise<void>;
  /** Fast shutdown (SIGINT), waiting for the server to exit. Idempotent. */
  stop(): Promise<void>;
}

/** restart() after stop() began: nothing to restart, and nobody waits for it. */
export class ServerStoppingError extends Error {
  constructor() {
    super('the embedded PostgreSQL is stopping');
    this.name = 'ServerStoppingError';
  }
}

const DEFAULT_PORT = 5432;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
const LOG_FILE = 'postgres.log';

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const validated = validateOptions(options);
  const startedAt = performance.now();
  const port = validated.port ?? DEFAULT_PORT;
  const dataDir = path.resolve(validated.dataDir);
  const runAs = await unprivilegedUser();
  const binaries = await locateBinaries(runAs);
  const serverDataPath = await prepareDataDir(dataDir, runAs);
  const init = await initCluster(dataDir, serverDataPath, binaries, runAs);
  const initialised = init !== 'existing';
  if (init === 'initialised again') {
    options.log?.warn({ dataDir }, 'embedded_initdb_redone');
  }
  const socket = await chooseSocketDir(dataDir, serverDataPath, port, runAs);
  const host = encodeURIComponent(socket.clientDir);
  const connectionString = `postgres://postgres@localhost:${port}/postgres?host=${host}`;
  const settings: Record<string, string> = {
    listen_addresses: validated.port === undefined ? '' : '127.0.0.1',
    max_connections: '100',
    ...validated.settings,
  };
  const args = ['-D', serverDataPath, '-k', socket.serverDir, '-p', String(port)];
  for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);

  const boot = async (append: boolean): Promise<LaunchedServer> => {
    await removeStaleLockFiles(dataDir, socket.clientDir, port);
    const server = await launch(binaries.postgres, args, dataDir, runAs, append);
    await waitUntilAccepting(connectionString, server.exited, server.logFile, START_TIMEOUT_MS).catch(
      async (error: unknown) => {
        server.child.kill('SIGQUIT');
        await server.exited;
        server.disarm();
        throw error;
      },
    );
    return server;
  };
  let server: LaunchedServer;
  try {
    server = await boot(false);
  } catch (error) {
    await socket.release();
    throw error;
  }
  const ms = Math.round(performance.now() - startedAt);
  options.log?.info({ dataDir, socketDir: socket.clientDir, port, pid: server.child.pid ?? 0, initialised, ms }, 'embedded_postgres_started');
  return handle({ server, boot, socket, connectionString, dataDir, port, log: options.log, onUnexpectedExit: options.onUnexpectedExit });
}

interface LaunchedServer {
  readonly child: ChildProcess;
  readonly exited: Promise<ServerExit>;
  readonly logFile: string;
  /** Ends the parent-death guard (the watchdog, where one runs). */
  readonly disarm: () => void;
}

/**
 * Spawns postgres with its output going to a log file in the data dir (truncated on each start), in a
 * session of its own: a terminal's Ctrl-C goes to the whole foreground process group, and PostgreSQL takes
 * SIGINT as "fast shutdown", which would end the database under a supervisor that is still letting its
 * tasks finish. The server stops when we stop it, or when we die (the parent-death guard).
 */
async function launch(
  postgres: string,
  args: string[],
  dataDir: string,
  runAs: RunAs | undefined,
  append = false,
): Promise<LaunchedServer> {
  const logFile = path.join(dataDir, LOG_FILE);
  // A restart appends: the log of the server that went away is what tells why.
  const log = await open(logFile, append ? 'a' : 'w');
  let child: ChildProcess;
  try {
    if (runAs) await chown(logFile, runAs.uid, runAs.gid);
    const guarded = await guardAgainstParentDeath(postgres, args);
    const stdio: StdioOptions = ['ignore', log.fd, log.fd];
    child = spawn(guarded.command, guarded.args, { ...spawnOptions(dataDir, runAs), stdio, detached: true, windowsHide: true });
    const exited = new Promise<ServerExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
    });
    const disarm = child.pid === undefined ? () => {} : guarded.guard(child.pid);
    return { child, exited, logFile, disarm };
  } finally {
    await log.close();
  }
}

function handle(state: {
  server: LaunchedServer;
  boot: (append: boolean) => Promise<LaunchedServer>;
  socket: SocketDir;
  connectionString: string;
  dataDir: string;
  port: number;
  log: EmbeddedPostgresLogger | undefined;
  onUnexpectedExit: ((exit: ServerExit) => void) | undefined;
}): EmbeddedPostgres {
  const { socket, dataDir, log } = state;
  let server = state.server;
  let stopping: Promise<void> | undefined;
  let exit: ServerExit | undefined;
  const watch = (launched: LaunchedServer) => {
    exit = undefined;
    const pid = launched.child.pid ?? 0;
    void launched.exited.then((value) => {
      if (launched !== server) return;
      exit = value;
      if (stopping) return;
      log?.warn({ dataDir, pid, code: value.code, signal: value.signal }, 'embedded_postgres_exited');
      state.onUnexpectedExit?.(value);
    });
    // The server alone does not keep this process alive; stop() holds it until the server is gone.
    launched.child.unref();
  };
  watch(server);

  let restarting: Promise<void> | undefined;
  const restart = () => {
    restarting ??= restartServer().finally(() => {
      restarting = undefined;
    });
    return restarting;
  };

  async function restartServer(): Promise<void> {
    if (stopping) throw new ServerStoppingError();
    if (exit === undefined) throw new Error('the embedded PostgreSQL is running');
    server.disarm();
    // boot() ends the dead postmaster's backends still running before it removes its postmaster.pid.
    const next = await state.boot(true);
    if (stopping) {
      // Stopped while it started again: it must not outlive the stop.
      next.child.kill('SIGINT');
      await next.exited;
      next.disarm();
      return;
    }
    server = next;
    watch(server);
  }

  async function stopServer(): Promise<void> {
    await restarting?.catch(() => {});
    server.child.ref();
    if (exit === undefined) {
      server.child.kill('SIGINT');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
      });
      if ((await Promise.race([server.exited, timedOut])) === 'timeout') {
        log?.warn({ dataDir, pid: server.child.pid, timeoutMs: STOP_TIMEOUT_MS }, 'embedded_postgres_stop_timeout');
        server.child.kill('SIGQUIT');
        await server.exited;
      }
      clearTimeout(timer);
      log?.info({ dataDir, pid: server.child.pid }, 'embedded_postgres_stopped');
    }
    server.disarm();
    await socket.release();
  }

  const stop = () => (stopping ??= stopServer());
  return {
    connectionString: state.connectionString,
    dataDir,
    socketDir: socket.clientDir,
    port: state.port,
    get pid() {
      return server.child.pid ?? 0;
    },
    restart,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
