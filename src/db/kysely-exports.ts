/**
 * What prefork uses of kysely: the entry of the single-file build that `npm run build` makes of it
 * (rolldown.config.js, into dist/db/kysely-bundle.js; see kysely-module.ts for why). Not imported by anything.
 */
export { CompiledQuery, isAbortedTransactionError, Kysely, PostgresDialect, sql } from 'kysely';
