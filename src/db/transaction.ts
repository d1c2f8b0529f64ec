/**
 * Running a function in a transaction, retrying the WHOLE function when retrying is safe:
 *
 * - a serialization failure (40001) or a deadlock (40P01), raised by any statement or by COMMIT itself: the
 *   server rolled everything back;
 * - the connection lost BEFORE commit was sent (or BEGIN failing that way): nothing was committed. The dead
 *   connection is discarded; the next attempt opens a new one (a TaskConnection reconnects, with its own
 *   connect retries).
 *
 * The connection lost DURING commit is different: the server may have committed just before the connection
 * went. That is never retried; a CommitOutcomeUnknownError (code COMMIT_OUTCOME_UNKNOWN) says so.
 *
 * `fn` may run more than once: keep its side effects inside the transaction, or make them idempotent.
 * Inside `fn`, use `trx`, never the outer `db`: on a task connection the outer handle waits for the
 * transaction's connection, which waits for `fn`.
 */
import type { AccessMode, ControlledTransaction, IsolationLevel, Kysely, Transaction } from 'kysely';
import { isKyselyLoaded, kysely, loadKysely } from './kysely-module.js';
import { CommitOutcomeUnknownError, PreforkError, coerceError } from '../errors.js';
import { fullJitterDelay, sleep } from './backoff.js';
import { classifyDatabaseError, sqlStateOf } from './error-classification.js';
import { assertOptionKeys, assertSignal, wholeNumber } from '../queue/task-input.js';

export interface TransactionOptions {
  /** Reruns of `fn` after a retryable failure (default 3; 0: none). */
  retries?: number | undefined;
  isolationLevel?: IsolationLevel | undefined;
  accessMode?: AccessMode | undefined;
  /** Stops retrying (and the wait before a retry) when aborted. */
  signal?: AbortSignal | undefined;
  /** Waits between attempts: full jitter over [0, min(maxDelayMs, baseDelayMs * 2^n)] (defaults 25 / 1 000 ms). */
  baseDelayMs?: number | undefined;
  maxDelayMs?: number | undefined;
  /** Told before each retry. */
  onRetry?: ((event: TransactionRetryEvent) => void) | undefined;
}

export interface TransactionRetryEvent {
  /** The attempt that failed, from 1. */
  attempt: number;
  delayMs: number;
  reason: string;
  code: string | undefined;
  error: Error;
}

export const transactionDefaults = { retries: 3, baseDelayMs: 25, maxDelayMs: 1_000 } as const;

export async function withTransaction<DB, T>(
  db: Kysely<DB>,
  fn: (trx: Transaction<DB>, attempt: number) => Promise<T>,
  options: TransactionOptions | null = {},
): Promise<T> {
  options = checkedTransactionOptions(options);
  // The caller's Kysely may come from its own import: the check of commit errors needs the module here too.
  if (!isKyselyLoaded()) await loadKysely();
  const retries = options.retries ?? transactionDefaults.retries;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    const outcome = await runOnce(db, fn, attempt, options);
    if (outcome.ok) return outcome.value;
    const verdict = classifyDatabaseError(outcome.error);
    const retryable = verdict.category === 'serialization' || verdict.category === 'connection';
    if (!retryable || attempt > retries || options.signal?.aborted) throw outcome.error;
    const delayMs = fullJitterDelay(attempt - 1, options.baseDelayMs ?? transactionDefaults.baseDelayMs, options.maxDelayMs ?? transactionDefaults.maxDelayMs);
    options.onRetry?.({ attempt, delayMs, reason: verdict.reason, code: verdict.code, error: coerceError(outcome.error) });
    await sleep(delayMs, options.signal);
  }
}

const optionKeys = ['retries', 'isolationLevel', 'accessMode', 'signal', 'baseDelayMs', 'maxDelayMs', 'onRetry'];
// Kysely's list has SQL Server's 'snapshot' too, which PostgreSQL refuses at SET TRANSACTION.
const isolationLevels = ['read uncommitted', 'read committed', 'repeatable read', 'serializable'];
const accessModes = ['read only', 'read write'];

/**
 * The options, or INVALID_OPTION before anything runs: a typo (`isolation`) would run at the wrong isolation level,
 * and a `retries` that is not a number would rerun for ever. null, as options or as a value, is not given.
 */
export function checkedTransactionOptions(options: TransactionOptions | null | undefined): TransactionOptions {
  const label = 'transaction: ';
  assertOptionKeys(options, optionKeys, label);
  if (options === undefined || options === null) return {};
  const o = options as Record<string, unknown>;
  wholeNumber(o.retries, 'retries', 0, 1_000, label);
  wholeNumber(o.baseDelayMs, 'baseDelayMs', 0, 2_147_483_647, label);
  wholeNumber(o.maxDelayMs, 'maxDelayMs', 0, 2_147_483_647, label);
  for (const [key, allowed] of [['isolationLevel', isolationLevels], ['accessMode', accessModes]] as const) {
    const v = o[key];
    if (v !== undefined && v !== null && !allowed.includes(v as string)) {
      throw new PreforkError('INVALID_OPTION', `${label}${key} must be one of ${allowed.map((a) => `'${a}'`).join(', ')} (got ${JSON.stringify(v) ?? typeof v})`, { exitCode: 2 });
    }
  }
  assertSignal(o.signal);
  if (o.onRetry !== undefined && o.onRetry !== null && typeof o.onRetry !== 'function') {
    throw new PreforkError('INVALID_OPTION', `${label}onRetry must be a function`, { exitCode: 2 });
  }
  return options;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** BEGIN, fn, COMMIT. A failure is returned for the caller to judge; an unknown commit outcome is thrown. */
async function runOnce<DB, T>(db: Kysely<DB>, fn: (trx: Transaction<DB>, attempt: number) => Promise<T>, attempt: number, options: TransactionOptions): Promise<Outcome<T>> {
  let trx: ControlledTransaction<DB>;
  try {
    let builder = db.startTransaction();
    if (options.isolationLevel) builder = builder.setIsolationLevel(options.isolationLevel);
    if (options.accessMode) builder = builder.setAccessMode(options.accessMode);
    trx = await builder.execute();
  } catch (error) {
    return { ok: false, error }; // BEGIN failed: nothing ran
  }
  let value: T;
  try {
    value = await fn(trx, attempt);
  } catch (error) {
    await trx.rollback().execute().catch(() => {});
    return { ok: false, error };
  }
  try {
    await trx.commit().execute();
    return { ok: true, value };
  } catch (error) {
    // Kysely keeps the connection leased when COMMIT fails; the rollback gives it back (and discards it if dead).
    await trx.rollback().execute().catch(() => {});
    if (!commitOutcomeKnown(error)) throw new CommitOutcomeUnknownError(error);
    return { ok: false, error };
  }
}

/**
 * The server answered COMMIT with an error (a serialization failure, a deferred constraint, an aborted
 * transaction): it rolled back, and we know it. Anything else, above all a connection that went away, may
 * have happened before or after the commit took effect.
 */
function commitOutcomeKnown(error: unknown): boolean {
  // A Kysely instance exists when a transaction ran, so the module is loaded.
  if (kysely().isAbortedTransactionError(error)) return true;
  return sqlStateOf(error) !== undefined && classifyDatabaseError(error).category !== 'connection';
}
