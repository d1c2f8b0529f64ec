/**
 * kysely, loaded when asked rather than at import: its ESM build is some 260 modules, about 140 ms of CPU on these
 * machines, and the primary and the CLI never need it. A worker loads it beside its task module, before it reports
 * ready, so that `ctx.db` and `ctx.sql` can stay plain synchronous properties.
 */
type KyselyModule = typeof import('kysely');

let loaded: KyselyModule | undefined;
let loading: Promise<KyselyModule> | undefined;

export function loadKysely(): Promise<KyselyModule> {
  return (loading ??= import('kysely').then((m) => (loaded = m)));
}

/** The module, once loadKysely() resolved; throws before (a bug: the caller skipped the wait). */
export function kysely(): KyselyModule {
  if (!loaded) throw new Error('kysely is not loaded yet: await loadKysely() first');
  return loaded;
}

export function isKyselyLoaded(): boolean {
  return loaded !== undefined;
}
