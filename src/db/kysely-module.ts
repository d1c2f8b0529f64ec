/**
 * kysely, loaded when asked rather than at import: the primary and the CLI never need it. A worker loads it beside
 * its task module, before it reports ready, so that `ctx.db` and `ctx.sql` can stay plain synchronous properties.
 *
 * Only the modules prefork uses are loaded (`kyselyParts`): kysely's index is some 280 modules, and importing it
 * took 136–174 ms of CPU here against 110–116 ms for these; four workers starting together on two cores reached
 * ready about 110 ms sooner (5 alternating starts). They are the very files the index re-exports, so a task module
 * that imports `kysely` itself gets the same classes and the same `sql`. Should a kysely release move them (or
 * `import.meta.resolve` be missing, before Node 20.6), the index is loaded instead.
 */
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
  return (loading ??= loadKyselyParts()
    .catch(() => import('kysely'))
    .then((m) => (loaded = m)));
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
