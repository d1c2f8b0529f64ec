/** Arranging and observing tasks through the database, as an operator could. */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, onTestFinished } from 'vitest';
import { query } from './database.js';
import type { SupervisorProcess } from './processes.js';

/** One task per payload, in one statement (ids in payload order); `delayMs` puts their due time that far ahead. */
export async function insertTasks(
  schema: string,
  name: string,
  payloads: unknown[],
  options: { priority?: number; maxAttempts?: number; queue?: string; delayMs?: number } = {},
): Promise<string[]> {
  const rows = await query<{ id: string }>(
    `insert into "${schema}".tasks (name, payload, priority, max_attempts, queue, run_at)
     select $1, p, $3, $4, $5, now() + $6 * interval '1 millisecond' from jsonb_array_elements($2::jsonb) p returning id`,
    [name, JSON.stringify(payloads), options.priority ?? 0, options.maxAttempts ?? null, options.queue ?? 'default', options.delayMs ?? 0],
  );
  return rows.map((r) => r.id);
}

/**
 * A file that `fixture.recordToFile` tasks append their id to, once per execution; removed when the test ends.
 * `runs()` counts executions per task id.
 */
export function executionLog(): { file: string; runs(): Map<string, number> } {
  const file = join(tmpdir(), `prefork-test-executions-${randomUUID()}.log`);
  onTestFinished(() => rmSync(file, { force: true }));
  return {
    file,
    runs() {
      const counts = new Map<string, number>();
      if (!existsSync(file)) return counts;
      for (const id of readFileSync(file, 'utf8').split('\n')) if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
      return counts;
    },
  };
}

export async function countByState(schema: string): Promise<Record<string, number>> {
  const rows = await query<{ state: string; n: number }>(`select state, count(*)::int as n from "${schema}".tasks group by state`);
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

export async function waitForFinal(schema: string, total: number, timeout = 60_000): Promise<void> {
  await expect
    .poll(async () => (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks where state not in ('queued', 'running')`))[0]!.n, {
      timeout,
      interval: 100,
    })
    .toBe(total);
}

/** The pid of the worker whose connection runs `taskId` right now (from pg_stat_activity and the fork log). */
export async function workerRunning(schema: string, sup: SupervisorProcess, taskId: string, timeout = 10_000): Promise<number> {
  let workerId: number | undefined;
  await expect
    .poll(
      async () => {
        const rows = await query<{ application_name: string }>(`select application_name from pg_stat_activity where application_name = any($1)`, [
          sup.events('worker_forked').map((l) => `prefork:${schema} w${l.workerId as number} t${taskId}`),
        ]);
        workerId = rows[0] ? Number(/ w(\d+) /.exec(rows[0].application_name)![1]) : undefined;
        return workerId;
      },
      { timeout, interval: 50 },
    )
    .toBeDefined();
  return sup.events('worker_forked').find((l) => l.workerId === workerId)!.workerPid as number;
}

/** The built package's entry as a URL, for a task module file to import `defineTask` from. */
export const distIndex = pathToFileURL(join(process.cwd(), 'dist/index.js')).href;

/**
 * A task module file a test rewrites (a deploy gone right or wrong, then a reload), in the temporary directory and
 * removed when the test ends, written with `text` if given. `write` replaces its text.
 */
export function taskModuleFile(text?: string): { path: string; write(text: string): void } {
  const path = join(tmpdir(), `prefork-test-module-${randomUUID()}.mjs`);
  onTestFinished(() => rmSync(path, { force: true }));
  const write = (t: string) => writeFileSync(path, t);
  if (text !== undefined) write(text);
  return { path, write };
}
