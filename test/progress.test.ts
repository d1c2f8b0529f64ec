/** ctx.progress: what a running task reports is recorded, read by the client and `inspect`, and kept with the result. */
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { useClients } from './support/clients.js';
import { useTestSchema } from './support/database.js';
import { fixture, runCli, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';

const schemaName = useTestSchema();
useProcessLeakGuard();
const { client } = useClients();

describe('task progress', () => {
  it('a running task reports its progress: the client and inspect read it while it runs, and the result keeps the last', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--tasks', fixture('progress-tasks.js'), '--workers', '2']);
    await sup.ready();
    const prefork = client(schema);
    const gate = join(tmpdir(), `prefork-progress-gate-${randomUUID()}`);
    onTestFinished(() => rmSync(gate, { force: true }));

    const id = await prefork.send('progress.gated', { gate });
    await expect.poll(async () => (await prefork.get(id))?.progress, { timeout: 10_000 }).toEqual({ step: 1, of: 2 });
    expect((await prefork.get(id))?.status).toBe('running');
    const inspected = await runCli(['inspect', 'task', id], { schema });
    // Stored as jsonb, which orders an object's keys its own way.
    expect(inspected.stdout).toContain('\n  progress: {"of":2,"step":1}\n');
    expect(JSON.parse((await runCli(['inspect', 'task', id, '--json'], { schema })).stdout).progress).toEqual({ step: 1, of: 2 });

    writeFileSync(gate, '');
    const done = await prefork.result(id, { timeoutMs: 10_000 });
    // Reported just before the outcome, and written with it: the result read after the outcome shows it.
    expect(done).toMatchObject({ status: 'succeeded', result: 'done', progress: { step: 2, of: 2 } });

    // Many reports at once: the last is what stays. run() hands the task over directly; its result carries it.
    const counted = await prefork.run('progress.count', { n: 5_000 }, { timeoutMs: 10_000 });
    expect(counted).toMatchObject({ status: 'succeeded', result: 5_000, progress: { i: 5_000 } });
    expect((await prefork.get(counted.id))?.progress).toEqual({ i: 5_000 });
    const sent = JSON.parse((await runCli(['send', 'progress.count', '{"n": 3}', '--wait', '--json'], { schema })).stdout);
    expect(sent).toMatchObject({ status: 'succeeded', progress: { i: 3 } });

    // A value PostgreSQL cannot store is refused where it is reported.
    const bad = await prefork.run('progress.unstorable', {}, { timeoutMs: 10_000 });
    expect(bad).toMatchObject({ status: 'failed', progress: null, error: { code: 'INVALID_PROGRESS', message: expect.stringContaining('NUL') } });
    await sup.stop();
  });
});
