import { createHash } from 'node:crypto';
import { chown, lstat, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RunAs } from './run-as.js';

/** sizeof(sockaddr_un.sun_path) is 108 on Linux (104 on macOS), including the terminating NUL. */
const MAX_SOCKET_PATH = process.platform === 'linux' ? 107 : 103;

export interface SocketDir {
  /** Where clients find the socket. */
  readonly clientDir: string;
  /** What the server is told (differs from clientDir only when the data dir is reached through /proc/self/cwd). */
  readonly serverDir: string;
  /** Removes the directory if it was made for this server. */
  release(): Promise<void>;
}

export function socketPath(dir: string, port: number): string {
  return path.join(dir, `.s.PGSQL.${port}`);
}

/** The data dir itself, unless the socket path would be too long; then a fresh short dir under the temp dir. */
export async function chooseSocketDir(
  dataDir: string,
  serverDataPath: string,
  port: number,
  runAs: RunAs | undefined,
): Promise<SocketDir> {
  if (Buffer.byteLength(socketPath(dataDir, port)) <= MAX_SOCKET_PATH) {
    return { clientDir: dataDir, serverDir: serverDataPath, release: async () => {} };
  }
  const dir = await shortDirFor(dataDir, runAs);
  const release = () => rm(dir, { recursive: true, force: true });
  if (Buffer.byteLength(socketPath(dir, port)) > MAX_SOCKET_PATH) {
    await release();
    throw new Error(`no socket directory short enough for PostgreSQL: ${dataDir} and ${os.tmpdir()} are too long`);
  }
  return { clientDir: dir, serverDir: dir, release };
}

/**
 * The same short dir for the same data dir, so that a server killed with its supervisor (SIGKILL: nothing
 * removes the dir) leaves one behind, reused by the next start, not one more each time. One that someone
 * else made first (another owner, a symlink, not a directory) is passed over for a fresh random one.
 */
async function shortDirFor(dataDir: string, runAs: RunAs | undefined): Promise<string> {
  const dir = path.join(os.tmpdir(), `prefork-pg-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`);
  const owner = runAs?.uid ?? process.getuid?.();
  try {
    await mkdir(dir, { mode: 0o700 });
    if (runAs) await chown(dir, runAs.uid, runAs.gid);
    return dir;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const info = await lstat(dir);
  if (info.isDirectory() && (owner === undefined || info.uid === owner) && (info.mode & 0o077) === 0) return dir;
  const fresh = await mkdtemp(path.join(os.tmpdir(), 'prefork-pg-'));
  if (runAs) await chown(fresh, runAs.uid, runAs.gid);
  return fresh;
}
