/**
 * kysely, loaded on first need rather than at import: its ESM build is some 260 modules, about 140 ms of a
 * worker's start-up on these machines, and neither the primary nor a task that never touches the database
 * needs it. A worker starts loading it as soon as it has reported ready, and a task waits for it (once) before
 * it runs, so that `ctx.db` can stay a plain synchronous property.
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
