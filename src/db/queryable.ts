import type pg from 'pg';

/** The part of `pg` the queue needs: a Client, a PoolClient or a Pool. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * A pg Pool, Client or PoolClient, which also runs named statements: the server parses and plans those once per
 * connection. For the statements the supervisor runs many times a second (claim, settle).
 */
export interface PreparingQueryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>>;
}
