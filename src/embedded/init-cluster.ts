import { spawn } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { PostgresBinaries } from './binaries.js';
import { chownTree, EXECUTE, isReachableBy, READ, type RunAs } from './run-as.js';
import { spawnOptions } from './spawn-options.js';

/** Linux: the spawned process's own cwd, which it entered as root before switching uid. */
const OWN_CWD = '/proc/self/cwd';

/**
 * Creates the data dir if needed, gives it to `runAs` with mode 0700 (PostgreSQL insists), and returns the
 * path to hand the server as its data dir: the dir itself, or /proc/self/cwd when `runAs` cannot reach it
 * by path (e.g. a project under /root, mode 700).
 */
export async function prepareDataDir(dataDir: string, runAs: RunAs | undefined): Promise<string> {
  await mkdir(dataDir, { recursive: true });
  const info = await stat(dataDir);
  if (runAs && info.uid !== runAs.uid) await chownTree(dataDir, runAs);
  if ((info.mode & 0o027) !== 0) await chmod(dataDir, 0o700);
  if (runAs === undefined || (await isReachableBy(runAs, dataDir, READ | EXECUTE))) return dataDir;
  if (process.platform === 'linux') return OWN_CWD;
  throw new Error(`data directory ${dataDir} is not reachable by user ${runAs.name}, which PostgreSQL runs as`);
}

/** Runs initdb unless the data dir already holds a cluster of the same major version. Returns true if it ran. */
export async function initCluster(
  dataDir: string,
  serverPath: string,
  binaries: PostgresBinaries,
  runAs: RunAs | undefined,
): Promise<boolean> {
  const existing = await readFile(path.join(dataDir, 'PG_VERSION'), 'utf8').catch(() => undefined);
  if (existing !== undefined) {
    if (existing.trim() !== binaries.majorVersion) {
      throw new Error(
        `data directory ${dataDir} holds a PostgreSQL ${existing.trim()} cluster, ` +
          `but the embedded server is PostgreSQL ${binaries.majorVersion}`,
      );
    }
    return false;
  }
  if ((await readdir(dataDir)).length > 0) {
    throw new Error(`data directory ${dataDir} is not empty and holds no PostgreSQL cluster`);
  }
  const args = ['-D', serverPath, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'];
  await runToCompletion(binaries.initdb, args, spawnOptions(dataDir, runAs), `initdb for ${dataDir}`);
  return true;
}

function runToCompletion(
  command: string,
  args: string[],
  options: ReturnType<typeof spawnOptions>,
  what: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.on('error', (error) => reject(new Error(`${what} could not start`, { cause: error })));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const tail = output.trim().split('\n').slice(-10).join('\n');
      reject(new Error(`${what} failed (${signal ?? `exit code ${code}`}):\n${tail}`));
    });
  });
}
