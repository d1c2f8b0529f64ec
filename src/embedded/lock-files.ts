import { readdir, readFile, readlink, realpath, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { isProcessAlive } from '../process-alive.js';

/**
 * Removes PostgreSQL's lock files (`postmaster.pid` in the data dir, `.s.PGSQL.<port>.lock` in the socket dir)
 * when they were left by a server that is gone. PostgreSQL only ignores a lock file whose pid is dead; a pid
 * reused by another process (or one it may not signal, when it runs as another user) blocks its start.
 * A lock file held by a live postgres of this data dir is an error: the cluster is in use.
 */
export async function removeStaleLockFiles(dataDir: string, socketDir: string, port: number): Promise<void> {
  for (const file of [path.join(dataDir, 'postmaster.pid'), path.join(socketDir, `.s.PGSQL.${port}.lock`)]) {
    await removeIfStale(file, dataDir);
  }
}

async function removeIfStale(file: string, dataDir: string): Promise<void> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return;
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  // Negative pids mark a single-user backend; the process is what matters either way.
  const holder = Math.abs(pid);
  if (isProcessAlive(holder) && (await isPostgresOf(holder, dataDir)) !== false) {
    throw new Error(`PostgreSQL is already running on ${dataDir} (pid ${holder}); stop it first`);
  }
  // The postmaster is gone, but its backends may not be yet (one busy in a query notices late). PostgreSQL
  // checks for them through this very file (the shared memory it names): removing it, they must go first.
  if (path.basename(file) === 'postmaster.pid') await stopOrphans(dataDir);
  await rm(file, { force: true });
}

const orphanGraceMs = 5_000;

/**
 * Ends the server processes still working in `dataDir` whose postmaster died (SIGQUIT: exit at once, no
 * shared state written; then SIGKILL after a grace), and waits until they are gone. Linux only (/proc).
 */
async function stopOrphans(dataDir: string): Promise<void> {
  const orphans = await postgresProcessesOf(dataDir);
  if (orphans.length === 0) return;
  const signal = (sig: NodeJS.Signals) => {
    for (const pid of orphans) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone already
      }
    }
  };
  signal('SIGQUIT');
  const deadline = Date.now() + orphanGraceMs;
  while (orphans.some(isProcessAlive)) {
    if (Date.now() > deadline) {
      signal('SIGKILL');
      break;
    }
    await sleep(20);
  }
  while (orphans.some(isProcessAlive)) await sleep(20);
}

/** The postgres processes whose working directory is `dataDir` (the server's run there). */
async function postgresProcessesOf(dataDir: string): Promise<number[]> {
  if (process.platform !== 'linux') return [];
  const wanted = await realpath(dataDir).catch(() => null);
  if (wanted === null) return [];
  const entries = await readdir('/proc').catch(() => [] as string[]);
  const found: number[] = [];
  for (const pid of entries.filter((e) => /^\d+$/.test(e)).map(Number)) {
    if (pid === process.pid) continue;
    const [exe, cwd] = await Promise.all([readlink(`/proc/${pid}/exe`).catch(() => ''), realpath(`/proc/${pid}/cwd`).catch(() => '')]);
    if (path.basename(exe).startsWith('postgres') && cwd === wanted && isProcessAlive(pid)) found.push(pid);
  }
  return found;
}

/** Whether `pid` is a postgres working in `dataDir`; undefined when this platform cannot tell (no /proc). */
async function isPostgresOf(pid: number, dataDir: string): Promise<boolean | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const [exe, cwd, wanted] = await Promise.all([
      readlink(`/proc/${pid}/exe`),
      realpath(`/proc/${pid}/cwd`),
      realpath(dataDir),
    ]);
    return path.basename(exe).startsWith('postgres') && cwd === wanted;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ESRCH' ? false : undefined;
  }
}
