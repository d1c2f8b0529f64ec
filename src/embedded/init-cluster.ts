import { spawn } from 'node:child_process';
import { access, chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
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

/** Written once initdb has finished: a data dir without it, never started by a server, is an interrupted initdb. */
const INITIALISED_MARKER = 'prefork-initdb-done';

/** What initdb creates in a data dir before it writes PG_VERSION: all an initdb killed that early leaves. */
const initdbEntries = new Set([
  'base', 'global', 'pg_commit_ts', 'pg_dynshmem', 'pg_logical', 'pg_multixact', 'pg_notify', 'pg_replslot', 'pg_serial',
  'pg_snapshots', 'pg_stat', 'pg_stat_tmp', 'pg_subtrans', 'pg_tblspc', 'pg_twophase', 'pg_wal', 'pg_xact', 'pg_summaries',
  'PG_VERSION', 'postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf', 'pg_ident.conf', 'postmaster.pid',
]);

export type InitOutcome = 'existing' | 'initialised' | 'initialised again';

/**
 * Runs initdb unless the data dir already holds a cluster of the same major version. An initdb that was
 * killed part-way (the first start's process group killed: a container stopped, say) leaves a cluster
 * no server can use; such a dir, never started by a server (no `postmaster.opts`) and so holding no data, is
 * emptied and initialised again instead of failing every later start.
 */
export async function initCluster(
  dataDir: string,
  serverPath: string,
  binaries: PostgresBinaries,
  runAs: RunAs | undefined,
): Promise<InitOutcome> {
  const exists = (name: string) => access(path.join(dataDir, name)).then(() => true, () => false);
  const existing = await readFile(path.join(dataDir, 'PG_VERSION'), 'utf8').catch(() => undefined);
  const entries = await readdir(dataDir);
  let again = false;
  if (existing !== undefined) {
    if (existing.trim() !== binaries.majorVersion) {
      throw new Error(
        `data directory ${dataDir} holds a PostgreSQL ${existing.trim()} cluster, ` +
          `but the embedded server is PostgreSQL ${binaries.majorVersion}`,
      );
    }
    if (await exists(INITIALISED_MARKER)) return 'existing';
    if (await exists('postmaster.opts')) {
      // Initialised before the marker existed, and started since: a complete cluster.
      await writeFile(path.join(dataDir, INITIALISED_MARKER), '');
      return 'existing';
    }
    again = true;
  } else if (entries.length > 0) {
    if (!entries.every((e) => initdbEntries.has(e))) {
      throw new Error(`data directory ${dataDir} is not empty and holds no PostgreSQL cluster`);
    }
    again = true;
  }
  if (again) await Promise.all(entries.map((e) => rm(path.join(dataDir, e), { recursive: true, force: true })));
  const args = ['-D', serverPath, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'];
  await runToCompletion(binaries.initdb, args, spawnOptions(dataDir, runAs), `initdb for ${dataDir}`);
  await writeFile(path.join(dataDir, INITIALISED_MARKER), '');
  return again ? 'initialised again' : 'initialised';
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
