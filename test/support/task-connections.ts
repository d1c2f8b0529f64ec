/**
 * In-process TaskConnections for tests of the database layer, with a leak guard: after each test every
 * connection the test made is closed, and the test fails if the server still shows a session of one.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, expect } from 'vitest';
import { loadKysely } from '../../src/db/kysely-module.js';
import { TaskConnection, type TaskConnectionOptions } from '../../src/db/task-connection.js';
import { databaseUrl, query } from './database.js';

// A worker loads kysely before its first task (run-task.ts); so do these tests.
await loadKysely();

export interface TaskConnections {
  /** A TaskConnection to the test database (or `connectionString`), fast connect retries unless overridden. */
  open(options?: Partial<TaskConnectionOptions>): TaskConnection;
  /** The application_name every connection of this helper carries. */
  readonly applicationName: string;
}

export function useTaskConnections(): TaskConnections {
  const applicationName = `prefork-test ${randomBytes(4).toString('hex')}`;
  const opened: TaskConnection[] = [];
  afterEach(async () => {
    const all = opened.splice(0);
    await Promise.all(all.map((c) => c.close()));
    await expect
      .poll(async () => (await query(`select pid from pg_stat_activity where application_name = $1`, [applicationName])).length, { timeout: 5_000 })
      .toBe(0);
  });
  return {
    applicationName,
    open(options = {}) {
      const connection = new TaskConnection({
        connectionString: databaseUrl(),
        applicationName,
        connectTimeoutMs: 5_000,
        connectRetries: 10,
        connectRetryBaseDelayMs: 20,
        connectRetryMaxDelayMs: 100,
        ...options,
      });
      opened.push(connection);
      return connection;
    },
  };
}
