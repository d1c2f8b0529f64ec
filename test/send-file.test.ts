/** `prefork send --file`: every line checked first, batches of inserts, progress, and waiting for thousands of tasks. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTaskLines } from '../src/cli/bulk/task-lines.js';
import { query, useTestSchema } from './support/database.js';
import { runCli, startWithFixtures, useProcessLeakGuard } from './support/processes.js';
import { CliSession, useCliSessionLeakGuard } from './support/terminal.js';

const schemaName = useTestSchema();
useProcessLeakGuard();
useCliSessionLeakGuard();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'prefork-send-file-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Summary {
  sent: number;
  firstId: string | null;
  lastId: string | null;
  invalid: { line: number; reason: string }[];
  outcome: {
    succeeded: number;
    failed: number;
    timedOut: number;
    cancelled: number;
    unfinished: number;
    missing: number;
    notSucceeded: { id: string; state: string }[];
    runMs: { p50: number; p99: number } | null;
    totalMs: { p50: number; p99: number } | null;
  } | null;
}

const count = async (schema: string) => (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks`))[0]!.n;

describe('prefork send --file', () => {
  it('10,000 lines with 3 bad ones: nothing sent without --skip-invalid (exit 2); with it, the 9,997 others all run', { timeout: 180_000 }, async () => {
    const schema = schemaName();
    const bad: Record<number, string> = {
      17: '{"task": "prefork.echo", "payload": {"i": 17}',
      5000: '{"task": "", "payload": {"i": 5000}}',
      9999: '{"task": "nobody.knows", "payload": {"i": 9999}}',
    };
    const lines = Array.from({ length: 10_000 }, (_, i) => bad[i + 1] ?? JSON.stringify({ task: 'prefork.echo', payload: { i: i + 1 } }));
    const file = path.join(dir, 'tasks.ndjson');
    await writeFile(file, `${lines.join('\n')}\n`);
    const sup = startWithFixtures(schema, ['--workers', '4']);
    await sup.ready();
    const refused = await runCli(['send', '--file', file, '--wait'], { schema });
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr.split('\n')).toEqual([
      expect.stringMatching(/^prefork: line 17: invalid JSON \(.+\)$/),
      'prefork: line 5000: "task" must be a non-empty string',
      'prefork: line 9999: unknown task "nobody.knows"',
      expect.stringMatching(/^prefork: the supervisors know the tasks .*\bprefork\.echo\b/),
      `prefork: error: 3 invalid lines in ${file}: nothing was sent (--skip-invalid sends the valid lines)`,
      '',
    ]);
    expect(await count(schema)).toBe(0);

    const r = await runCli(['send', '--file', file, '--skip-invalid', '--wait', '--json'], { schema });
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as Summary;
    expect(summary.invalid.map((b) => b.line)).toEqual([17, 5000, 9999]);
    expect(summary.invalid[1]!.reason).toBe('"task" must be a non-empty string');
    expect(summary.invalid[2]!.reason).toBe('unknown task "nobody.knows"');
    expect(summary.sent).toBe(9_997);
    expect(BigInt(summary.lastId!) - BigInt(summary.firstId!)).toBe(9_996n);
    expect(summary.outcome).toMatchObject({ succeeded: 9_997, failed: 0, timedOut: 0, cancelled: 0, unfinished: 0, missing: 0, notSucceeded: [] });
    expect(summary.outcome!.runMs!.p50).toBeGreaterThanOrEqual(0);
    expect(summary.outcome!.runMs!.p99).toBeGreaterThanOrEqual(summary.outcome!.runMs!.p50);
    expect(summary.outcome!.totalMs!.p99).toBeGreaterThanOrEqual(summary.outcome!.runMs!.p99);
    // The bad lines reported by number; the progress as plain lines (stderr is not a terminal).
    expect(r.stderr).toMatch(/^prefork: line 17: invalid JSON \(.+\)\nprefork: line 5000: "task" must be a non-empty string\nprefork: line 9999: unknown task "nobody\.knows"\n/);
    expect(r.stderr).toContain('prefork: sent 1,000/9,997 (10%)\n');
    expect(r.stderr).toContain('prefork: sent 9,997/9,997 (100%)\n');
    expect(r.stderr).toContain('prefork: finished 9,997/9,997 (100%)\n');

    // Every valid line ran once, with its own payload, and none of the bad ones.
    const rows = await query<{ state: string; n: number; lines: number; echoed: number }>(
      `select state, count(*)::int as n, count(distinct (payload->>'i'))::int as lines, count(*) filter (where result = payload)::int as echoed
         from "${schema}".tasks group by state`,
    );
    expect(rows).toEqual([{ state: 'succeeded', n: 9_997, lines: 9_997, echoed: 9_997 }]);
    expect(await query(`select id from "${schema}".tasks where (payload->>'i')::int in (17, 5000, 9999)`)).toEqual([]);
    await sup.stop();
  });

  it('reads stdin, applies the flags as defaults for the options a line does not set, and exits 1 when a task fails', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '2']);
    await sup.ready();
    const input = [
      '{"task": "prefork.echo", "payload": {"n": 1}}',
      '',
      '{"task": "prefork.echo", "payload": {"n": 2}, "options": {"priority": 9, "maxAttempts": 2, "queue": "default"}}',
      '{"task": "fixture.fail"}',
    ].join('\n');
    const r = await runCli(['send', '--file', '-', '--priority', '3', '--max-attempts', '5', '--wait', '--batch-size', '2'], { schema, input });
    expect(r.code).toBe(1);
    const [first, , failed] = (await query<{ id: string }>(`select id::text as id from "${schema}".tasks order by id`)).map((t) => t.id);
    expect(r.stdout.split('\n')).toEqual([
      `sent 3 tasks (ids ${first}–${failed})`,
      'finished 3: 2 succeeded, 1 failed, 0 timed out, 0 cancelled',
      `not succeeded: ${failed} failed; see prefork inspect <id>`,
      expect.stringMatching(/^run time \(start to end of the last attempt\): p50 [\d.]+ m?s, p99 [\d.]+ m?s$/),
      expect.stringMatching(/^time from send to end: p50 [\d.]+ m?s, p99 [\d.]+ m?s$/),
      '',
    ]);
    expect(await query(`select payload, priority, max_attempts, queue, state from "${schema}".tasks order by id`)).toEqual([
      { payload: { n: 1 }, priority: 3, max_attempts: 5, queue: 'default', state: 'succeeded' },
      { payload: { n: 2 }, priority: 9, max_attempts: 2, queue: 'default', state: 'succeeded' },
      { payload: {}, priority: 3, max_attempts: 5, queue: 'default', state: 'failed' },
    ]);
    await sup.stop();
  });

  it('draws progress bars on a terminal', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '2']);
    await sup.ready();
    const file = path.join(dir, 'small.ndjson');
    await writeFile(file, Array.from({ length: 300 }, (_, i) => JSON.stringify({ task: 'prefork.echo', payload: { i } })).join('\n'));
    const session = CliSession.inTerminal(['send', '--file', file, '--wait', '--batch-size', '50'], { PREFORK_SCHEMA: schema });
    expect(await session.exited).toBe(0);
    const out = session.stdout();
    expect(out).toMatch(/\rsent \[█+\] 300\/300 100%/);
    expect(out).toMatch(/\rfinished \[█+\] 300\/300 100%/);
    expect(out).toContain('finished 300: 300 succeeded, 0 failed, 0 timed out, 0 cancelled');
    await sup.stop();
  });

  it.each([
    [['send', 'prefork.echo', '--file', 'x.ndjson'], '--file takes the tasks from the file: give no task name or payload'],
    [['send', '--file', 'x.ndjson', '--key', 'k'], '--key is not supported with --file (send tasks with a unique key one by one)'],
    [['send', '--file', 'x.ndjson', '--timeout', '100'], '--timeout is for --wait'],
    [['send', 'prefork.echo', '--skip-invalid'], '--skip-invalid is for --file'],
    [['send', 'prefork.echo', '--batch-size', '10'], '--batch-size is for --file'],
    [['send', '--file', path.join(os.tmpdir(), 'prefork-no-such-file.ndjson')], `cannot read ${path.join(os.tmpdir(), 'prefork-no-such-file.ndjson')}: ENOENT: no such file or directory, open '${path.join(os.tmpdir(), 'prefork-no-such-file.ndjson')}'`],
  ])('%j: exit 2, %s', async (args, message) => {
    expect(await runCli(args, { schema: schemaName() })).toEqual({ code: 2, stdout: '', stderr: `prefork: error: ${message}\n` });
  });
});

describe('send --file lines', () => {
  const reasons = (text: string) => parseTaskLines(text).bad.map((b) => `${b.line}: ${b.reason}`);

  it('reads one task per line, skips blank lines, numbers lines from 1', () => {
    const { tasks, bad } = parseTaskLines('{"task":"a"}\n\n  \n{"task":"b","payload":[1],"options":{"delayMs":5}}\r\n', { priority: 1, queue: 'q' });
    expect(bad).toEqual([]);
    expect(tasks).toEqual([
      { line: 1, task: { task: 'a', payload: {}, options: { priority: 1, delayMs: undefined, queue: 'q', maxAttempts: undefined } } },
      { line: 4, task: { task: 'b', payload: [1], options: { priority: 1, delayMs: 5, queue: 'q', maxAttempts: undefined } } },
    ]);
  });

  it.each([
    ['{"task": "a"', /^1: invalid JSON \(.+\)$/],
    ['[1, 2]', '1: must be a JSON object like {"task": "name", "payload": {...}}'],
    ['"a"', '1: must be a JSON object like {"task": "name", "payload": {...}}'],
    ['{"name": "a"}', '1: unknown field "name" (expected task, payload, options)'],
    ['{"payload": {}}', '1: "task" must be a non-empty string'],
    ['{"task": "  "}', '1: "task" must be a non-empty string'],
    ['{"task": 7}', '1: "task" must be a non-empty string'],
    [`{"task": "${'x'.repeat(201)}"}`, '1: "task" must be at most 200 characters'],
    ['{"task": "a", "options": []}', '1: "options" must be an object'],
    ['{"task": "a", "options": {"priority": 1001}}', '1: "options.priority" must be a whole number from 0 to 1000'],
    ['{"task": "a", "options": {"priority": 1.5}}', '1: "options.priority" must be a whole number from 0 to 1000'],
    ['{"task": "a", "options": {"delayMs": -1}}', '1: "options.delayMs" must be a whole number from 0 to 2147483647'],
    ['{"task": "a", "options": {"maxAttempts": 0}}', '1: "options.maxAttempts" must be a whole number from 1 to 1000000'],
    ['{"task": "a", "options": {"queue": ""}}', '1: "options.queue" must be a non-empty string'],
    ['{"task": "a", "options": {"key": "k"}}', '1: "options.key" is not supported by send --file (send tasks with a unique key one by one)'],
    ['{"task": "a", "options": {"retries": 3}}', '1: "options.retries" is not an option (expected priority, delayMs, queue, maxAttempts)'],
  ])('%s', (line, reason) => {
    const got = reasons(line);
    expect(got).toHaveLength(1);
    if (typeof reason === 'string') expect(got[0]).toBe(reason);
    else expect(got[0]).toMatch(reason);
  });
});
