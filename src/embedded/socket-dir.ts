import { chown, mkdtemp, rm } from 'node:fs/promises';
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
  const dir = await mkdtemp(path.join(os.tmpdir(), 'prefork-pg-'));
  if (runAs) await chown(dir, runAs.uid, runAs.gid);
  const release = () => rm(dir, { recursive: true, force: true });
  if (Buffer.byteLength(socketPath(dir, port)) > MAX_SOCKET_PATH) {
    await release();
    throw new Error(`no socket directory short enough for PostgreSQL: ${dataDir} and ${os.tmpdir()} are too long`);
  }
  return { clientDir: dir, serverDir: dir, release };
}
