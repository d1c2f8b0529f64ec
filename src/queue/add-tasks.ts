import type { Queryable } from '../db/queryable.js';
import { quoteIdent } from '../db/identifiers.js';
import { PreforkError } from '../errors.js';
import { assertOptionKeys, checkNewTask, payloadOrEmpty, storing } from './task-input.js';
import type { AddTaskOptions } from './add-task.js';

export interface NewTask {
  task: string;
  payload?: unknown;
  options?: Omit<AddTaskOptions, 'key'> | undefined;
}

/** Inserts many tasks in one statement (no unique keys); returns their ids in order. */
export async function addTasks(db: Queryable, schema: string, tasks: readonly NewTask[]): Promise<string[]> {
  if (!Array.isArray(tasks)) throw new PreforkError('INVALID_OPTION', 'sendMany takes an array of { task, payload, options }', { exitCode: 2 });
  if (tasks.length === 0) return [];
  const now = Date.now();
  const rows = tasks.map((t, i) => {
    const label = `task ${i + 1}: `;
    if (typeof t !== 'object' || t === null || Array.isArray(t)) {
      throw new PreforkError('INVALID_OPTION', `${label}must be an object { task, payload, options } (got ${t === null ? 'null' : typeof t})`, { exitCode: 2 });
    }
    assertOptionKeys(t, ['task', 'payload', 'options'], label);
    const o = t.options ?? {};
    if (typeof o === 'object' && 'key' in o && (o as { key?: unknown }).key !== undefined) {
      throw new PreforkError('INVALID_OPTION', `${label}key is not supported by sendMany (send tasks with a unique key one by one)`, { exitCode: 2 });
    }
    const payload = payloadOrEmpty(t.payload);
    checkNewTask(t.task, payload, o, label);
    const runAt = o.runAt ?? (o.delayMs ? new Date(now + o.delayMs) : null);
    return { ord: i, name: t.task, payload, queue: o.queue ?? 'default', priority: o.priority ?? 0, run_at: runAt?.toISOString() ?? null, max_attempts: o.maxAttempts ?? null };
  });
  const { rows: ids } = await storing(db.query<{ id: string }>(
    `insert into ${quoteIdent(schema)}.tasks (name, payload, queue, priority, run_at, max_attempts)
     -- jsonb_to_recordset reads a JSON null as SQL NULL: a null payload is stored as JSON null, as send() stores it.
     select name, coalesce(payload, 'null'::jsonb), queue, priority, coalesce(run_at, now()), max_attempts
       from jsonb_to_recordset($1::jsonb)
         as t(ord integer, name text, payload jsonb, queue text, priority integer, run_at timestamptz, max_attempts integer)
      order by ord
     returning id`,
    [JSON.stringify(rows)],
  ));
  // Identity values are assigned in insertion order.
  return ids.map((r) => r.id).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
}
