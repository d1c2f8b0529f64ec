/** Scheduled tasks: cron expressions, and each tick queued once however many supervisors run. */
import { describe, expect, it } from 'vitest';
import { CronSchedule } from '../src/schedule/cron.js';
import { defineTask } from '../src/task.js';
import { query, useTestSchema } from './support/database.js';
import { fixture, runCli, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';
import { distIndex, taskModuleFile } from './support/tasks.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

describe('scheduled tasks', () => {
  it('two supervisors on one database queue each tick of a schedule once; a tick while the last run is not done is skipped', async () => {
    const schema = schemaName();
    const start = () => SupervisorProcess.start(schema, ['--tasks', fixture('scheduled-tasks.js'), '--workers', '2']);
    const sups = [start(), start()];
    await Promise.all(sups.map((s) => s.ready()));
    await expect
      .poll(async () => (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks where name = 'sched.tick' and state = 'succeeded'`))[0]!.n, { timeout: 20_000 })
      .toBeGreaterThanOrEqual(3);
    // status shows what the live supervisors keep: the next tick (ahead), the last one fired (behind).
    const status = await runCli(['status', '--json'], { schema });
    const { schedules } = JSON.parse(status.stdout) as { schedules: { name: string; cron: string; timeZone: string; nextAt: string; lastFiredAt: string }[] };
    expect(schedules.map((s) => [s.name, s.cron, s.timeZone])).toEqual([
      ['sched.slow', '* * * * * *', 'Asia/Kolkata'],
      ['sched.tick', '*/2 * * * * *', 'UTC'],
    ]);
    for (const s of schedules) expect(Date.parse(s.nextAt)).toBeGreaterThan(Date.parse(s.lastFiredAt));
    expect((await runCli(['status'], { schema })).stdout).toMatch(/\nschedule sched\.tick \(\*\/2 \* \* \* \* \*, UTC\): next \S+Z, last \S+Z\n/);
    // The slow one's ticks are skipped while its run is not done: status says so (it showed the skipped tick as
    // the last one fired, as if runs were happening).
    type Schedule = { name: string; lastFiredAt: string | null; lastQueuedAt: string | null; skippedInARow: number };
    const slowNow = async () => (JSON.parse((await runCli(['status', '--json'], { schema })).stdout) as { schedules: Schedule[] }).schedules.find((x) => x.name === 'sched.slow')!;
    // One reading for both: by a second reading the run may have ended and the next tick been queued.
    let skipping: Schedule | undefined;
    await expect
      .poll(async () => (skipping = await slowNow()).skippedInARow, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(1);
    expect(Date.parse(skipping!.lastQueuedAt!)).toBeLessThan(Date.parse(skipping!.lastFiredAt!));
    await expect
      .poll(async () => (await runCli(['status'], { schema })).stdout, { timeout: 10_000 })
      .toMatch(/\nschedule sched\.slow \(\* \* \* \* \* \*, Asia\/Kolkata\): next \S+Z, last \S+Z; \d+ ticks? skipped since the run queued for \S+Z: it is not done \(still queued or running\)\n/);
    await Promise.all(sups.map((s) => s.stop()));

    type Row = { name: string; state: string; payload: { kind?: string; scheduledAt: string }; created_at: Date; finished_at: Date | null };
    const rows = await query<Row>(`select name, state, payload, created_at, finished_at from "${schema}".tasks order by id`);
    const ticks = rows.filter((r) => r.name === 'sched.tick');
    const at = ticks.map((r) => r.payload.scheduledAt);
    expect(new Set(at).size, 'a tick queued twice').toBe(at.length);
    for (const t of ticks) {
      expect(t.payload).toEqual({ kind: 'tick', scheduledAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/) });
      // Queued at its tick (not before), by whichever supervisor won it.
      expect(t.created_at.getTime()).toBeGreaterThanOrEqual(Date.parse(t.payload.scheduledAt));
    }
    const fired = sups.flatMap((s) => s.logs.filter((l) => l.event === 'schedule_fired' && l.task === 'sched.tick'));
    expect(fired.map((l) => l.tick).sort()).toEqual([...at].sort());
    // The supervisor that lost a tick knew it had (no run of this fast task was still queued to skip it for).
    expect(sups.flatMap((s) => s.logs).filter((l) => l.event === 'schedule_skipped' && l.task === 'sched.tick')).toEqual([]);

    // The slow task never overlaps itself: each run is queued only after the previous one finished.
    const slow = rows.filter((r) => r.name === 'sched.slow');
    expect(slow.length).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < slow.length; i++) expect(slow[i]!.created_at.getTime()).toBeGreaterThanOrEqual(slow[i - 1]!.finished_at!.getTime());
    expect(sups.flatMap((s) => s.logs).some((l) => l.event === 'schedule_skipped' && l.task === 'sched.slow')).toBe(true);
    const [rowsInTable] = await query<{ n: number }>(`select count(*)::int as n from "${schema}".schedules`);
    expect(rowsInTable!.n).toBe(2);
  });

  it('a reload re-arms the schedules the task module changed: a changed one from then on, a new one, none for one removed', async () => {
    const schema = schemaName();
    const moduleFile = taskModuleFile();
    const file = moduleFile.path;
    const write = (tasks: Record<string, string>) =>
      moduleFile.write(
        `import { defineTask } from '${distIndex}';\nexport default {\n${Object.entries(tasks)
          .map(([name, schedule]) => `  '${name}': defineTask({ schedule: ${schedule}, run: (payload) => payload }),\n`)
          .join('')}};\n`,
      );
    write({ 'sched.kept': "'* * * * * *'", 'sched.changed': "{ cron: '* * * * * *', payload: { v: 1 } }", 'sched.removed': "'* * * * * *'" });
    const sup = SupervisorProcess.start(schema, ['--workers', '1', '--tasks', file]);
    await sup.ready();
    const count = async (name: string, where = 'true') =>
      (await query<{ n: number }>(`select count(*)::int as n from "${schema}".tasks where name = $1 and ${where}`, [name]))[0]!.n;
    await expect.poll(() => count('sched.removed'), { timeout: 10_000 }).toBeGreaterThanOrEqual(1);

    write({ 'sched.kept': "'* * * * * *'", 'sched.changed': "{ cron: '* * * * * *', payload: { v: 2 } }", 'sched.added': "'* * * * * *'" });
    const reload = await runCli(['reload', '--timeout', '30000'], { schema });
    expect(reload.code, reload.stderr).toBe(0);
    const removedAtReload = await count('sched.removed');
    // A new schedule fires, a changed one fires with its new payload, and one kept as it was goes on ticking.
    await expect.poll(() => count('sched.added'), { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    await expect.poll(() => count('sched.changed', `payload->>'v' = '2'`), { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    // At most the tick that was being fired as the reload finished.
    expect((await count('sched.removed')) - removedAtReload).toBeLessThanOrEqual(1);
    const status = JSON.parse((await runCli(['status', '--json'], { schema })).stdout) as { schedules: { name: string }[] };
    expect(status.schedules.map((s) => s.name)).toEqual(['sched.added', 'sched.changed', 'sched.kept']);
    expect(sup.events('schedule_disarmed').map((l) => l.task)).toEqual(['sched.removed']);
    // The unchanged schedule was not armed again (its ticks went on from the same timer).
    expect(sup.events('schedule_armed').filter((l) => l.task === 'sched.kept')).toHaveLength(1);
    await sup.stop();
    const kept = await query<{ tick: string }>(`select payload->>'scheduledAt' as tick from "${schema}".tasks where name = 'sched.kept'`);
    expect(new Set(kept.map((r) => r.tick)).size, 'a tick queued twice').toBe(kept.length);
  });

  it('cron expressions: next times in UTC, both day fields either-or, steps, names and macros', () => {
    const after = new Date('2026-11-29T14:59:30.500Z'); // a Sunday
    const next = (expression: string, n = 3) => {
      const schedule = CronSchedule.parse(expression);
      const out: string[] = [];
      for (let t: Date | null = after; out.length < n; ) out.push((t = schedule.next(t!))!.toISOString());
      return out;
    };
    expect(next('*/15 * * * *')).toEqual(['2026-11-29T15:00:00.000Z', '2026-11-29T15:15:00.000Z', '2026-11-29T15:30:00.000Z']);
    expect(next('*/2 * * * * *')).toEqual(['2026-11-29T14:59:32.000Z', '2026-11-29T14:59:34.000Z', '2026-11-29T14:59:36.000Z']);
    expect(next('0 9 * * MON-FRI')).toEqual(['2026-11-30T09:00:00.000Z', '2026-12-01T09:00:00.000Z', '2026-12-02T09:00:00.000Z']);
    expect(next('0 0 13 * 5')).toEqual(['2026-12-04T00:00:00.000Z', '2026-12-11T00:00:00.000Z', '2026-12-13T00:00:00.000Z']);
    expect(next('0 0 29 2 *', 2)).toEqual(['2028-02-29T00:00:00.000Z', '2032-02-29T00:00:00.000Z']);
    expect(next('5/20 * * * *')).toEqual(['2026-11-29T15:05:00.000Z', '2026-11-29T15:25:00.000Z', '2026-11-29T15:45:00.000Z']);
    expect(next('0 12 * * 7', 1)).toEqual(['2026-12-06T12:00:00.000Z']);
    expect(next('@daily', 2)).toEqual(['2026-11-30T00:00:00.000Z', '2026-12-01T00:00:00.000Z']);
    expect(next('0 0 1 jan *', 1)).toEqual(['2027-01-01T00:00:00.000Z']);
    const s = CronSchedule.parse('*/10 * * * * *');
    expect(s.latest(new Date('2026-11-29T15:00:35Z'), new Date('2026-11-29T14:59:59.999Z'))!.toISOString()).toBe('2026-11-29T15:00:30.000Z');
  });

  it('in a time zone: the wall clock of that zone, an hour the clocks skip does not run, one they repeat runs once', () => {
    const after = (iso: string, expression: string, timeZone: string, n: number) => {
      const schedule = CronSchedule.parse(expression, timeZone);
      const out: string[] = [];
      for (let t: Date | null = new Date(iso); out.length < n; ) out.push((t = schedule.next(t!))!.toISOString());
      return out;
    };
    // Berlin goes from 02:00 to 03:00 on 2027-03-28 (no 02:30 that day) and back from 03:00 to 02:00 on 2026-10-25.
    expect(after('2027-03-27T12:00:00Z', '30 2 * * *', 'Europe/Berlin', 2)).toEqual(['2027-03-29T00:30:00.000Z', '2027-03-30T00:30:00.000Z']);
    expect(after('2026-10-24T12:00:00Z', '30 2 * * *', 'Europe/Berlin', 2)).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
    expect(after('2026-10-24T12:00:00Z', '0 * * * *', 'Europe/Berlin', 5)).toEqual([
      '2026-10-24T13:00:00.000Z', '2026-10-24T14:00:00.000Z', '2026-10-24T15:00:00.000Z', '2026-10-24T16:00:00.000Z', '2026-10-24T17:00:00.000Z',
    ]);
    // Weekdays at 09:00 in New York (EST, UTC-5, in late November); midnight in Kolkata (UTC+5:30).
    expect(after('2026-11-27T20:00:00Z', '0 9 * * 1-5', 'America/New_York', 2)).toEqual(['2026-11-30T14:00:00.000Z', '2026-12-01T14:00:00.000Z']);
    expect(after('2026-11-29T12:00:00Z', '@daily', 'Asia/Kolkata', 2)).toEqual(['2026-11-29T18:30:00.000Z', '2026-11-30T18:30:00.000Z']);
    expect(after('2026-11-29T12:00:00Z', '0 0 29 2 *', 'Asia/Kolkata', 1)).toEqual(['2028-02-28T18:30:00.000Z']);
    expect(CronSchedule.parse('@hourly', 'UTC').timeZone).toBeNull();
    expect(() => defineTask({ schedule: { cron: '@daily', timeZone: 'Mars/Olympus_Mons' }, run: () => 1 })).toThrow(
      'defineTask: schedule: unknown time zone "Mars/Olympus_Mons" (an IANA name such as Europe/Berlin, or UTC)',
    );
  });

  it.each([
    ['* * * *', '5 fields (minute hour day month weekday) or 6 (seconds first), got 4'],
    ['61 * * * *', 'minute field "61": 61 is outside 0-59'],
    ['0 0 30 2 *', 'it matches no time in the next 5 years'],
    ['*/0 * * * *', 'minute field "*/0": step "0" must be a whole number from 1'],
    ['5-1 * * * *', 'minute field "5-1": range 5-1 runs backwards'],
    ['@often', 'unknown macro (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)'],
    ['0 0 * * funday', 'weekday field "funday": "funday" is not a number or a name'],
  ])('defineTask refuses the schedule %j at import', (cron, why) => {
    expect(() => defineTask({ schedule: cron, run: () => 1 })).toThrow(`defineTask: schedule: invalid cron expression "${cron}": ${why}`);
  });

  it('defineTask refuses a schedule payload that is not an object', () => {
    expect(() => defineTask({ schedule: { cron: '@hourly', payload: [1] as never }, run: () => 1 })).toThrow('defineTask: schedule.payload must be an object');
    expect(() => defineTask({ schedule: 5 as never, run: () => 1 })).toThrow('defineTask: schedule must be a cron expression or { cron, payload, timeZone }');
  });
});
