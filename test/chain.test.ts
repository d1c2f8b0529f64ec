/** ctx.send: a task queues follow-ups, on its own connection or inside its transaction (then only if it commits). */
import { describe, expect, it } from 'vitest';
import { useClients } from './support/clients.js';
import { query, useTestSchema } from './support/database.js';
import { fixture, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';

const schemaName = useTestSchema();
useProcessLeakGuard();
const { client } = useClients();

describe('follow-up tasks', () => {
  it('a follow-up sent in the transaction of an attempt that failed is not queued; the next attempt queues it once', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--tasks', fixture('chain-tasks.js'), '--workers', '2']);
    await sup.ready();
    const prefork = client(schema);
    const first = await prefork.run('chain.first', {}, { timeoutMs: 20_000 });
    expect(first).toMatchObject({ status: 'succeeded', attempts: 2 });
    const { inside, after } = first.result as { inside: string; after: string };
    const followUps = await Promise.all([prefork.result(inside, { timeoutMs: 10_000 }), prefork.result(after, { timeoutMs: 10_000 })]);
    expect(followUps.map((t) => [t.status, t.result])).toEqual([
      ['succeeded', { attempt: 2, parent: first.id }],
      ['succeeded', { after: true }],
    ]);
    // The options reached the row; and nothing else was queued (the first attempt's follow-up was rolled back).
    expect(await query(`select priority from "${schema}".tasks where id = $1`, [inside])).toEqual([{ priority: 1 }]);
    expect(await query(`select count(*)::int as n from "${schema}".tasks where name = 'chain.second'`)).toEqual([{ n: 2 }]);

    const bad = await prefork.run('chain.bad', {}, { timeoutMs: 10_000 });
    expect(bad).toMatchObject({ status: 'failed', error: { code: 'INVALID_TASK_NAME' } });
    await sup.stop();
  });
});
