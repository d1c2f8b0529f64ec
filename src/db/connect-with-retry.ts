/**
 * Opening one connection: transient failures (refused, reset, timed out, too many connections, server
 * starting or stopping) are retried with capped exponential backoff and full jitter, bounded by a number of
 * retries AND a total time budget; permanent ones (authentication, unknown database, ...) fail at once.
 * Every error thrown is one line, names the target with its password masked, and never contains the password.
 */
import type pg from 'pg';
import { coerceError, PreforkError } from '../errors.js';
import { fullJitterDelay, raceAbort, sleep } from './backoff.js';
import { redactConnectionString, redactSecrets } from './connection-string.js';
import { classifyDatabaseError, type DatabaseErrorClassification } from './error-classification.js';

export interface ConnectRetryPolicy {
  /** Retries after the first attempt; 0: one attempt only. */
  retries: number;
  /** Budget for all attempts and the waits between them, in ms; 0: no budget, `retries` alone bounds. */
  maxElapsedMs: number;
  /** The first wait is drawn from [0, baseDelayMs]; each next ceiling doubles, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const connectRetryDefaults: Readonly<ConnectRetryPolicy> = { retries: 4, maxElapsedMs: 15_000, baseDelayMs: 250, maxDelayMs: 5_000 };

export interface ConnectRetryEvent {
  /** The attempt that failed, from 1. */
  attempt: number;
  delayMs: number;
  reason: string;
  code: string | undefined;
  /** The failure, redacted. */
  message: string;
}

export interface ConnectWithRetryOptions extends Partial<ConnectRetryPolicy> {
  /** Only for messages (always redacted); the client factory holds the real settings. */
  connectionString: string;
  /** Per attempt (pg's connectionTimeoutMillis), never more than what is left of the budget; 0: none. */
  connectTimeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  onRetry?: ((event: ConnectRetryEvent) => void) | undefined;
  random?: () => number;
}

/** Why retryTransient stopped: the failure, one line and redacted, and what was decided. */
export interface RetryFailure {
  error: unknown;
  /** The failure, redacted, on one line. */
  message: string;
  verdict: DatabaseErrorClassification;
  /** `not retried` (permanent), or `gave up after N attempts in T s` (and why, when the time budget ran out). */
  why: string;
  /** true: a transient failure, and the retries or the time budget ran out; false: a permanent one, not retried. */
  transient: boolean;
}

export interface RetryTransientOptions extends Partial<ConnectRetryPolicy> {
  /** Only for messages: secrets of it are masked in every message. */
  connectionString: string;
  signal?: AbortSignal | undefined;
  onRetry?: ((event: ConnectRetryEvent) => void) | undefined;
  random?: () => number;
  /** The failure as one line (before redaction); the error's message by default. */
  describe?: (error: unknown) => string;
  /** The error thrown when the failure is permanent or the policy is spent. */
  fail: (failure: RetryFailure) => Error;
  /** The error thrown when `signal` aborts (before an attempt, after a failure, or during a wait). */
  aborted: () => Error;
}

/**
 * Runs one database step (a connect) until it succeeds: transient failures are retried with capped exponential
 * backoff and full jitter, bounded by the retries AND the time budget; a permanent one ends it at once. `step`
 * gets what is left of the budget (undefined: no budget) and should end its attempt on `signal` itself.
 */
export async function retryTransient<T>(step: (remainingMs: number | undefined) => Promise<T>, options: RetryTransientOptions): Promise<T> {
  const policy = { ...connectRetryDefaults, ...definedOnly(options) };
  const { connectionString, signal } = options;
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw options.aborted();
    try {
      return await step(policy.maxElapsedMs ? policy.maxElapsedMs - elapsed() : undefined);
    } catch (error) {
      if (signal?.aborted) throw options.aborted();
      const verdict = classifyDatabaseError(error);
      const message = oneLine(options.describe?.(error) ?? (coerceError(error).message || coerceError(error).name), connectionString);
      const stop = (why: string) => options.fail({ error, message, verdict, why, transient: verdict.transient });
      if (!verdict.transient) throw stop('not retried');
      const spent = () => `after ${attempt} attempt${attempt === 1 ? '' : 's'} in ${(elapsed() / 1000).toFixed(1)} s`;
      if (attempt > policy.retries) throw stop(`gave up ${spent()}`);
      const delayMs = fullJitterDelay(attempt - 1, policy.baseDelayMs, policy.maxDelayMs, options.random);
      if (policy.maxElapsedMs && elapsed() + delayMs >= policy.maxElapsedMs) {
        throw stop(`gave up ${spent()}: the ${policy.maxElapsedMs} ms connect budget is spent`);
      }
      options.onRetry?.({ attempt, delayMs, reason: verdict.reason, code: verdict.code, message });
      await sleep(delayMs, signal).catch(() => {
        throw options.aborted();
      });
    }
  }
}

/** `createClient` builds a fresh client for each attempt (a pg.Client connects only once). */
export async function connectWithRetry(
  createClient: (connectTimeoutMs: number | undefined) => pg.Client,
  options: ConnectWithRetryOptions,
): Promise<pg.Client> {
  const { connectionString, signal } = options;
  // Only messages need the redacted target: parsed when one is written, not on every connect.
  const target = () => redactConnectionString(connectionString);
  let timeoutMs: number | undefined;
  return retryTransient(
    async (remainingMs) => {
      timeoutMs = attemptTimeout(options.connectTimeoutMs, remainingMs);
      let client: pg.Client | undefined;
      try {
        client = createClient(timeoutMs);
        client.on('error', () => {});
        await raceAbort(client.connect(), signal);
        return client;
      } catch (error) {
        if (client) void client.end().catch(() => {});
        throw error;
      }
    },
    {
      ...options,
      describe: (error) => describe(error, timeoutMs),
      fail: ({ error, message, verdict, why }) =>
        new PreforkError('DB_CONNECT_FAILED', `could not connect to PostgreSQL at ${target()}: ${message} (${[verdict.code, verdict.reason].filter(Boolean).join(', ')}: ${why})`, {
          cause: sanitized(error, message),
        }),
      aborted: () =>
        new PreforkError('DB_CONNECT_ABORTED', `connecting to PostgreSQL at ${target()} was aborted: ${oneLine(coerceError(signal?.reason).message, connectionString)}`, {
          cause: signal?.reason,
        }),
    },
  );
}

function attemptTimeout(perAttemptMs: number | undefined, remainingMs: number | undefined): number | undefined {
  const limits = [perAttemptMs || undefined, remainingMs].filter((x): x is number => x !== undefined);
  return limits.length === 0 ? undefined : Math.max(1, Math.floor(Math.min(...limits)));
}

/** pg's bare "timeout expired" says which timeout. */
function describe(error: unknown, timeoutMs: number | undefined): string {
  const e = coerceError(error);
  return e.message === 'timeout expired' && timeoutMs ? `no answer within ${timeoutMs} ms (connect timeout)` : e.message || e.name;
}

function oneLine(text: string, connectionString: string): string {
  return redactSecrets(text, connectionString).replace(/\s*\n\s*/g, ' ').trim();
}

/** The cause kept on the thrown error: a redacted copy, so no property of the original can leak a secret. */
export function sanitized(error: unknown, message: string): Error {
  const original = coerceError(error) as Error & Record<string, unknown>;
  const copy = new Error(message) as Error & Record<string, unknown>;
  copy.name = original.name;
  for (const key of ['code', 'errno', 'syscall', 'severity']) {
    if (typeof original[key] === 'string' || typeof original[key] === 'number') copy[key] = original[key];
  }
  return copy;
}

function definedOnly(options: Partial<ConnectRetryPolicy>): Partial<ConnectRetryPolicy> {
  const out: Partial<ConnectRetryPolicy> = {};
  for (const key of ['retries', 'maxElapsedMs', 'baseDelayMs', 'maxDelayMs'] as const) {
    const value = options[key];
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) out[key] = value;
  }
  return out;
}
