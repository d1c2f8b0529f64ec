// `npm run build`, after tsc: kysely as one file, dist/db/kysely-bundle.js, for the workers to load in one read
// (src/db/kysely-module.ts says why). Built from the kysely installed here, whose version it exports, so that a
// worker uses it only beside that same version.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defineConfig } from 'rolldown';

/** The directory of the kysely installed here, and its version. */
function installedKysely() {
  let dir = dirname(createRequire(import.meta.url).resolve('kysely'));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (pkg.name === 'kysely') return { dir, version: pkg.version };
    } catch {
      // no package.json here: look further up
    }
    if (dirname(dir) === dir) throw new Error("kysely's package.json not found");
    dir = dirname(dir);
  }
}

const kysely = installedKysely();
// kysely's MIT license goes with its code.
const license = readFileSync(join(kysely.dir, 'LICENSE'), 'utf8').trim().replaceAll('*/', '* /');

export default defineConfig({
  input: 'dist/db/kysely-exports.js',
  platform: 'node',
  output: {
    file: 'dist/db/kysely-bundle.js',
    format: 'esm',
    banner: `/*! kysely ${kysely.version}, https://github.com/kysely-org/kysely\n\n${license}\n*/`,
    footer: `export const kyselyVersion = ${JSON.stringify(kysely.version)};`,
  },
});
