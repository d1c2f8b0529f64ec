import { access, chmod, cp, lstat, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hydrateSymlinks } from './symlinks.js';

const COMPLETE_MARKER = '.prefork-complete';

/**
 * Copies the package's `native/` tree (without static libraries) to `<tmpdir>/prefork-<name>/native`,
 * readable by everyone, with its library symlinks made. Done once per package version: later calls and other
 * processes reuse the copy. Returns the directory that holds `native/`.
 */
export async function copyToSharedDir(packageRoot: string, name: string): Promise<string> {
  const target = path.join(os.tmpdir(), `prefork-${name}`);
  if (await isUsableCopy(target)) return target;
  const staging = await mkdtemp(`${target}.partial-`);
  try {
    await cp(path.join(packageRoot, 'native'), path.join(staging, 'native'), {
      recursive: true,
      verbatimSymlinks: true,
      filter: (source) => !source.endsWith('.a'),
    });
    await hydrateSymlinks(staging);
    await writeFile(path.join(staging, COMPLETE_MARKER), '');
    await chmod(staging, 0o755);
    await replaceWith(target, staging);
  } catch (error) {
    throw new Error(`could not copy the PostgreSQL binaries to ${target}`, { cause: error });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return target;
}

/** A copy counts only if we own it, nobody else can write to it, and it was completed. */
async function isUsableCopy(dir: string): Promise<boolean> {
  const info = await lstat(dir).catch(() => undefined);
  if (info === undefined) return false;
  if (!info.isDirectory() || info.uid !== process.getuid?.() || (info.mode & 0o022) !== 0) {
    throw new Error(`${dir} exists but is not a private copy of the PostgreSQL binaries; remove it`);
  }
  return access(path.join(dir, COMPLETE_MARKER)).then(() => true, () => false);
}

async function replaceWith(target: string, staging: string): Promise<void> {
  try {
    await rename(staging, target);
  } catch (error) {
    // Another process may have finished the same copy first; use theirs.
    if (await isUsableCopy(target)) return;
    await rm(target, { recursive: true, force: true });
    await rename(staging, target).catch(() => {
      throw error;
    });
  }
}
