import type { SpawnOptions } from 'node:child_process';
import type { RunAs } from './run-as.js';

/**
 * Options for spawning initdb or postgres: as `runAs` when given, in `cwd` (entered before the uid switch, so
 * a data dir that `runAs` cannot reach by path still works through /proc/self/cwd), with a C locale, and
 * without libpq's PG* variables, which would otherwise change the server's defaults.
 */
export function spawnOptions(cwd: string, runAs: RunAs | undefined): SpawnOptions {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('PG')) env[name] = value;
  env.LC_ALL = 'C';
  return { cwd, env, ...(runAs && { uid: runAs.uid, gid: runAs.gid }) };
}
