/** The settings of every task connection: server-side timeouts and how the connection is opened. */

export interface SessionSettings {
  /** Milliseconds; 0 or undefined: not set, the server's default applies (normally none). */
  statementTimeoutMs?: number | undefined;
  lockTimeoutMs?: number | undefined;
  idleInTransactionTimeoutMs?: number | undefined;
  /** Per connect attempt (pg's connectionTimeoutMillis). */
  connectTimeoutMs?: number | undefined;
  /**
   * PostgreSQL 14+: how often a running query checks that its client is still there, so the query of a
   * killed worker stops instead of running on. Leave undefined on older servers.
   */
  clientConnectionCheckIntervalMs?: number | undefined;
  /** Connect retries after the first attempt, for transient failures only (default 4; 0: no retry). */
  connectRetries?: number | undefined;
  /** Budget for all connect attempts and waits, ms (default 15 000; 0: no budget, retries alone bound). */
  connectRetryMaxMs?: number | undefined;
  /** Backoff between connect attempts: full jitter over [0, min(max, base * 2^n)] (defaults 250 / 5 000 ms). */
  connectRetryBaseDelayMs?: number | undefined;
  connectRetryMaxDelayMs?: number | undefined;
}

/** What a task may set for itself in defineTask(), over the worker's session defaults. */
export interface TaskSessionOverrides {
  /** statement_timeout for this task's connection, ms; 0: none. */
  statementTimeoutMs?: number | undefined;
  /** lock_timeout for this task's connection, ms; 0: none. */
  lockTimeoutMs?: number | undefined;
  /** idle_in_transaction_session_timeout for this task's connection, ms; 0: none. */
  idleInTransactionTimeoutMs?: number | undefined;
}

export const taskSessionOverrideKeys = ['statementTimeoutMs', 'lockTimeoutMs', 'idleInTransactionTimeoutMs'] as const;

/** The worker's defaults with the task's own values on top (an explicit 0 turns a default off). */
export function taskSessionSettings(defaults: SessionSettings, task: TaskSessionOverrides | undefined): SessionSettings {
  const merged: SessionSettings = { ...defaults };
  for (const key of taskSessionOverrideKeys) {
    const value = task?.[key];
    if (value !== undefined) merged[key] = value;
  }
  return merged;
}
