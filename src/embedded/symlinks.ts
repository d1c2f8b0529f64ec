import { lstat, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Recreates the library symlinks listed in `native/pg-symlinks.json` (what the package's postinstall
 * scripts/hydrate-symlinks.js does), failing loudly instead of swallowing errors. Existing entries are kept.
 */
export async function hydrateSymlinks(packageRoot: string): Promise<void> {
  const listFile = path.join(packageRoot, 'native', 'pg-symlinks.json');
  const list = await readFile(listFile, 'utf8').then(
    (text) => JSON.parse(text) as Array<{ source: string; target: string }>,
    () => [],
  );
  for (const { source, target } of list) {
    const link = path.join(packageRoot, target);
    if (await lstat(link).then(() => true, () => false)) continue;
    await symlink(path.relative(path.dirname(link), path.join(packageRoot, source)), link);
  }
}
