/**
 * kysely, loaded when asked rather than at import: the primary and the CLI never need it. A worker loads it beside
 * its task module, before it reports ready, so that `ctx.db` and `ctx.sql` can stay plain synchronous properties.
 *
 * From one file: `npm run build` makes dist/db/kysely-bundle.js of what prefork uses of kysely (the entry is
 * kysely-exports.ts; rolldown.config.js). The Kysely class alone reaches some 210 of kysely's modules, and Node
 * loads an ES module graph file by file: resolving, reading and linking each took 160–220 ms of CPU per worker
 * here, against 18 ms for the one file, and four workers starting on two cores were ready 1.01 s after `start`
 * against 1.34 s (3 alternating starts each). The file is used only beside the kysely version it was built from
 * (it exports that version); otherwise, and where there is no build (the sources run by the tests), the files that
 * define those exports are loaded from the installed kysely (`kyselyParts`), and should a kysely release move
 * them, its index.
 *
 * So a task module that imports `kysely` itself gets another copy of the same code: its `sql`, expressions and
 * helpers work with `ctx.db` (kysely tells them by their shape), but `instanceof` one of its classes is false for
 * `ctx.db` or a transaction of it (kysely's `db.isTransaction` says which it is).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

type Kysely = typeof import('kysely');
export type KyselyModule = Pick<Kysely, 'Kysely' | 'PostgresDialect' | 'sql' | 'CompiledQuery' | 'isAbortedTransactionError'>;

/** Each export prefork uses, and the file, relative to kysely's ESM index, that defines it. */
const kyselyParts: Record<keyof KyselyModule, string> = {
  Kysely: './kysely.js',
  PostgresDialect: './dialect/postgres/postgres-dialect.js',
  sql: './raw-builder/sql.js',
  CompiledQuery: './query-compiler/compiled-query.js',
  isAbortedTransactionError: './driver/aborted-transaction-error.js',
};

let loaded: KyselyModule | undefined;
let loading: Promise<KyselyModule> | undefined;

export function loadKysely(): Promise<KyselyModule> {
  return (loading ??= loadKyselyBundle()
    .catch(() => null)
    .then((bundle) => bundle ?? loadKyselyParts())
    .catch(() => import('kysely'))
    .then((m) => (loaded = m)));
}

/** Where `npm run build` writes kysely as one file, beside this module. */
export const kyselyBundleUrl = new URL('./kysely-bundle.js', import.meta.url);

/** The single-file build, if there is one and it was built from the installed kysely's version; otherwise null. */
export async function loadKyselyBundle(): Promise<KyselyModule | null> {
  if (!existsSync(kyselyBundleUrl)) return null;
  const installed = await installedKyselyVersion();
  const bundle = (await import(kyselyBundleUrl.href)) as KyselyModule & { kyselyVersion?: string };
  return installed !== undefined && bundle.kyselyVersion === installed ? bundle : null;
}

/** The version of the kysely that `import 'kysely'` finds from here; undefined when it cannot be told. */
export async function installedKyselyVersion(): Promise<string | undefined> {
  try {
    // …/kysely/dist/esm/index.js: the package's root is two levels up from its ESM index.
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.resolve('kysely')), 'utf8')) as { name?: unknown; version?: unknown };
    return pkg.name === 'kysely' && typeof pkg.version === 'string' ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

/** What prefork uses of kysely, from the files that define it; rejects when they are not where expected. */
export async function loadKyselyParts(): Promise<KyselyModule> {
  const index = import.meta.resolve('kysely');
  const parts = await Promise.all(
    Object.entries(kyselyParts).map(async ([name, file]) => {
      const value: unknown = ((await import(new URL(file, index).href)) as Record<string, unknown>)[name];
      if (value === undefined) throw new Error(`kysely's ${name} is not in ${file}, where prefork looks for it`);
      return [name, value] as const;
    }),
  );
  return Object.fromEntries(parts) as KyselyModule;
}

/** The module, once loadKysely() resolved; throws before (a bug: the caller skipped the wait). */
export function kysely(): KyselyModule {
  if (!loaded) throw new Error('kysely is not loaded yet: await loadKysely() first');
  return loaded;
}

export function isKyselyLoaded(): boolean {
  return loaded !== undefined;
}
