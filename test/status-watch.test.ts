/** `prefork status --json` against its documented shape, and `status --watch` in a real terminal, on pipes and as NDJSON. */
import { describe, expect, it } from 'vitest';
import { query, useTestSchema } from './support/database.js';
import { runCli, startWithFixtures, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';
import { CliSession, useCliSessionLeakGuard } from './support/terminal.js';

const schemaName = useTestSchema();
useProcessLeakGuard();
useCliSessionLeakGuard();

/** A type name (`'number|null'`), an object of shapes (exactly these keys), or `[shape]`: an array of them. */
type Shape = string | { [key: string]: Shape } | [Shape];

function shapeProblems(value: unknown, shape: Shape, at = '$'): string[] {
  if (typeof shape === 'string') {
    const actual = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
    return shape.split('|').includes(actual) ? [] : [`${at}: ${actual}, expected ${shape}`];
  }
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return [`${at}: expected an array`];
    return value.flatMap((v, i) => shapeProblems(v, shape[0], `${at}[${i}]`));
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${at}: expected an object`];
  const keys = Object.keys(value);
  return [
    ...keys.filter((k) => !(k in shape)).map((k) => `${at}.${k}: not in the documented shape`),
    ...Object.entries(shape).flatMap(([k, s]) => (k in value ? shapeProblems((value as Record<string, unknown>)[k], s, `${at}.${k}`) : [`${at}.${k}: missing`])),
  ];
}

/** `status --json` as the README documents it. */
const statusShape: Shape = {
  supervisors: [
    {
      id: 'string',
      pid: 'number',
      host: 'string',
      state: 'string',
      startedAt: 'string',
      heartbeatAt: 'string',
      concurrency: 'number|null',
      workersWanted: 'number|null',
      queues: 'array|null',
      tasks: ['string'],
      workers: [
        {
          id: 'number',
          pid: 'number',
          state: 'string',
          tasksDone: 'number',
          failures: 'number',
          rss: 'number|null',
          loopLagMs: 'number|null',
          uptimeMs: 'number',
          current: [{ taskId: 'string', name: 'string', attempt: 'number', runningMs: 'number', backendPid: 'number|null' }],
        },
      ],
      lastReload: 'object|null',
      startupFailure: 'object|null',
    },
  ],
  queue: { queued: 'number', running: 'number', succeeded: 'number', failed: 'number', timed_out: 'number', cancelled: 'number' },
  schedules: [{ name: 'string', cron: 'string', timeZone: 'string', nextAt: 'string|null', lastFiredAt: 'string|null', lastQueuedAt: 'string|null', skippedInARow: 'number' }],
  limits: [{ name: 'string', maxRunning: 'number|null', rateLimit: 'object|null', running: 'number', queued: 'number', startedInWindow: 'number|null' }],
  paused: [{ name: 'string', pausedAt: 'string', reason: 'string|null' }],
  exited: [{ id: 'string', pid: 'number', host: 'string', heartbeatAt: 'string' }],
};

/** One refresh of `status --watch --json`. */
const watchShape: Shape = {
  at: 'string',
  supervisors: [
    {
      id: 'string',
      pid: 'number',
      host: 'string',
      state: 'string',
      startedAt: 'string',
      heartbeatAt: 'string',
      snapshotAgeMs: 'number',
      concurrency: 'number|null',
      workersWanted: 'number|null',
      queues: 'array|null',
      tasks: ['string'],
      workers: [
        {
          id: 'number',
          pid: 'number',
          state: 'string',
          tasksDone: 'number',
          failures: 'number',
          rss: 'number|null',
          loopLagMs: 'number|null',
          uptimeMs: 'number|null',
          current: [{ taskId: 'string', name: 'string', attempt: 'number|null', runningMs: 'number', backendPid: 'number|null' }],
        },
      ],
      dbConnections: { inUse: 'number', limit: 'number', waiting: 'number', peak: 'number', enforced: 'boolean|null' },
      buffered: 'number|null',
      pendingOutcomes: 'number|null',
      schedules: [{ name: 'string', cron: 'string', timeZone: 'string', nextAt: 'string|null' }],
      limits: [{ name: 'string', maxRunning: 'number|null', rateLimit: 'object|null' }],
      paused: ['string'],
      lastReload: 'object|null',
      startupFailure: 'object|null',
    },
  ],
  queue: { queued: 'number', running: 'number', succeeded: 'number', failed: 'number', timed_out: 'number', cancelled: 'number' },
  throughput: { windowSeconds: 'number', finished: 'number', perSecond: 'number' },
};

const escape = {
  home: '\x1b[H',
  hideCursor: '\x1b[?25l',
  showCursor: '\x1b[?25h',
};

const occurrences = (text: string, part: string) => text.split(part).length - 1;

/** A supervisor with 2 workers, one of them in a long pg_sleep (cut short when the supervisor stops). */
async function startWithSleepingTask(schema: string): Promise<{ sup: SupervisorProcess; taskId: string }> {
  const sup = startWithFixtures(schema, ['--workers', '2', '--shutdown-timeout', '200']);
  await sup.ready();
  const sent = await runCli(['send', 'fixture.dbSleep', '{"seconds": 30}', '--max-attempts', '1'], { schema });
  expect(sent.code, sent.stderr).toBe(0);
  return { sup, taskId: sent.stdout.trim() };
}

describe('prefork status --json', () => {
  it('reports the event-loop lag of a worker whose task blocked its loop for 700 ms', async () => {
    const schema = schemaName();
    const sup = startWithFixtures(schema, ['--workers', '1']);
    await sup.ready();
    const lag = async () => {
      const [row] = await query<{ lag: number | null }>(`select (snapshot->'workers'->0->>'loopLagMs')::float8 as lag from "${schema}".supervisors where pid = $1`, [sup.pid]);
      return row?.lag ?? null;
    };
    // Idle, no stall near the one the task makes (a loaded test machine may delay a timer a little).
    await expect.poll(lag, { timeout: 10_000 }).not.toBeNull();
    expect(await lag()).toBeLessThan(500);
    const sent = await runCli(['send', 'fixture.block', '{"ms": 700}', '--wait'], { schema });
    expect(sent.code, sent.stderr).toBe(0);
    // Reported by the next heartbeat (once a second), published in the snapshot status reads.
    await expect.poll(lag, { timeout: 10_000, interval: 50 }).toBeGreaterThanOrEqual(500);
    await sup.stop();
  });

  it('prints every documented field with its type, a running task included', async () => {
    const schema = schemaName();
    const { sup, taskId } = await startWithSleepingTask(schema);
    let status: unknown;
    await expect
      .poll(async () => {
        const r = await runCli(['status', '--json'], { schema });
        status = JSON.parse(r.stdout);
        return (status as { supervisors: { workers: { current: { taskId: string; backendPid: number | null }[] }[] }[] }).supervisors[0]?.workers.flatMap((w) => w.current).find((c) => c.taskId === taskId)?.backendPid;
      })
      .toBeTypeOf('number');
    expect(shapeProblems(status, statusShape)).toEqual([]);
    const s = status as { supervisors: { pid: number; startedAt: string; heartbeatAt: string; workers: unknown[] }[]; queue: { running: number } };
    expect(s.supervisors).toHaveLength(1);
    expect(s.supervisors[0]!.pid).toBe(sup.pid);
    expect(s.supervisors[0]!.workers).toHaveLength(2);
    for (const t of [s.supervisors[0]!.startedAt, s.supervisors[0]!.heartbeatAt]) expect(new Date(t).toISOString()).toBe(t);
    expect(s.queue.running).toBe(1);
    await sup.stop();
  });
});

describe('prefork status --watch', () => {
  it('redraws in place in a terminal: both workers, the running task, the connections; Ctrl-C exits 0 and gives the cursor back', async () => {
    const schema = schemaName();
    const { sup, taskId } = await startWithSleepingTask(schema);
    const pids = sup.workerPids();
    const watch = CliSession.inTerminal(['status', '--watch', '--interval', '300'], { PREFORK_SCHEMA: schema });
    // ~1.5 s of refreshes: several frames, the running task visible in one of them.
    await expect.poll(() => occurrences(watch.stdout(), escape.home), { timeout: 20_000 }).toBeGreaterThanOrEqual(5);
    await expect.poll(() => watch.stdout()).toContain(`fixture.dbSleep#${taskId}`);
    watch.interrupt();
    expect(await watch.exited).toBe(0);

    const out = watch.stdout();
    for (const pid of pids) expect(out).toMatch(new RegExp(`^ +\\d+ +${pid}  ready`, 'm'));
    expect(out.startsWith(escape.hideCursor)).toBe(true);
    expect(out.trimEnd().endsWith(escape.showCursor)).toBe(true);
    expect(out).toContain(`supervisor `);
    expect(out).toContain(` pid ${sup.pid} on `);
    expect(out).toMatch(/db connections 1\/\d+ in use/);
    expect(out).toMatch(/queue: 0 queued, 1 running, 0 succeeded/);
    expect(out).toMatch(/throughput: \d+\.\d+ tasks\/s over the last 60 s/);
    await sup.stop();
  });

  it('prints a plain report per refresh when stdout is not a terminal, and says when no supervisor runs', async () => {
    const schema = schemaName();
    const watch = CliSession.piped(['status', '--watch', '--interval', '200'], { PREFORK_SCHEMA: schema });
    await expect.poll(() => occurrences(watch.stdout(), 'prefork status · '), { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
    watch.interrupt();
    expect(await watch.exited).toBe(0);
    expect(watch.stdout()).not.toContain('\x1b');
    expect(watch.stdout()).toContain('no supervisor is running (start one with: prefork start)\n');
    expect(watch.stderr()).toBe('');
  });

  it('--json prints one object per refresh (NDJSON)', async () => {
    const schema = schemaName();
    const { sup, taskId } = await startWithSleepingTask(schema);
    // A paused name shows in every frame (the supervisors' snapshots carry it).
    expect((await runCli(['pause', 'fixture.block'], { schema })).code).toBe(0);
    const watch = CliSession.piped(['status', '--watch', '--json', '--interval', '200'], { PREFORK_SCHEMA: schema });
    const frames = () =>
      watch
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { supervisors: { paused: string[]; workers: { current: { taskId: string }[] }[] }[] });
    await expect.poll(() => frames().filter((f) => f.supervisors[0]?.workers.some((w) => w.current.some((c) => c.taskId === taskId))).length).toBeGreaterThanOrEqual(2);
    await expect.poll(() => frames().at(-1)?.supervisors[0]?.paused).toEqual(['fixture.block']);
    watch.interrupt();
    expect(await watch.exited).toBe(0);
    for (const frame of frames()) expect(shapeProblems(frame, watchShape)).toEqual([]);
    const plain = CliSession.piped(['status', '--watch', '--interval', '200'], { PREFORK_SCHEMA: schema });
    await expect.poll(() => plain.stdout(), { timeout: 20_000 }).toContain('\npaused: fixture.block (prefork resume NAME)\n');
    plain.interrupt();
    expect(await plain.exited).toBe(0);
    await sup.stop();
  });

  it('--interval without --watch is a usage error', async () => {
    expect(await runCli(['status', '--interval', '500'], { schema: schemaName() })).toEqual({ code: 2, stdout: '', stderr: 'prefork: error: --interval is for --watch\n' });
  });
});
