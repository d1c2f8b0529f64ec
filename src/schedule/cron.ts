// Cron expressions, in UTC or an IANA time zone: `minute hour day-of-month month day-of-week`, or six fields
// with seconds first.
// Each field takes `*`, a number, a range `a-b`, a step `*/n` or `a-b/n` or `a/n`, and lists of those
// (`1,15,30-40`); months and days also by name (`JAN`, `MON`); Sunday is 0 or 7. As in Vixie cron, when both
// day fields are restricted a day matching either is a match. Also `@yearly` (`@annually`), `@monthly`,
// `@weekly`, `@daily` (`@midnight`) and `@hourly`.
import { PreforkError } from '../errors.js';

interface Field {
  min: number;
  max: number;
  names?: readonly string[];
}

const fields: Record<'second' | 'minute' | 'hour' | 'day' | 'month' | 'weekday', Field> = {
  second: { min: 0, max: 59 },
  minute: { min: 0, max: 59 },
  hour: { min: 0, max: 23 },
  day: { min: 1, max: 31 },
  month: { min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] },
  // 7 is Sunday too; folded into 0 below.
  weekday: { min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
};

const macros: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/** How far ahead `next()` looks: a schedule with no time in this many years never fires (`0 0 30 2 *`). */
const horizonYears = 5;

export class CronSchedule {
  private constructor(
    readonly expression: string,
    private readonly second: ReadonlySet<number>,
    private readonly minute: ReadonlySet<number>,
    private readonly hour: ReadonlySet<number>,
    private readonly day: ReadonlySet<number>,
    private readonly month: ReadonlySet<number>,
    private readonly weekday: ReadonlySet<number>,
    /** Both day fields restricted: either matches (Vixie cron). */
    private readonly dayOrWeekday: boolean,
    /** Whether the expression has a seconds field (ticks are then seconds apart, else minutes). */
    readonly hasSeconds: boolean,
    /** The IANA time zone its fields are read in; null: UTC. */
    readonly timeZone: string | null,
    private readonly zone: Intl.DateTimeFormat | null,
  ) {}

  /** Parses `expression` (in `timeZone`, an IANA name, or UTC), or throws INVALID_OPTION with what is wrong. */
  static parse(expression: string, timeZone?: string | null): CronSchedule {
    const bad = (why: string) => new PreforkError('INVALID_OPTION', `invalid cron expression "${expression}": ${why}`, { exitCode: 2 });
    if (typeof expression !== 'string') throw new PreforkError('INVALID_OPTION', `a cron expression must be a string (got ${typeof expression})`, { exitCode: 2 });
    const text = expression.trim();
    const expanded = text.startsWith('@') ? macros[text.toLowerCase()] : text;
    if (expanded === undefined) throw bad(`unknown macro (${Object.keys(macros).join(', ')})`);
    const parts = expanded.split(/\s+/);
    if (parts.length !== 5 && parts.length !== 6) throw bad(`5 fields (minute hour day month weekday) or 6 (seconds first), got ${parts.length}`);
    const hasSeconds = parts.length === 6;
    const [second, minute, hour, day, month, weekday] = hasSeconds ? parts : ['0', ...parts];
    const parse = (name: keyof typeof fields, value: string) => parseField(value, fields[name], (why) => bad(`${name} field "${value}": ${why}`));
    const weekdays = new Set([...parse('weekday', weekday!)].map((d) => d % 7));
    let zone: Intl.DateTimeFormat | null = null;
    if (timeZone !== undefined && timeZone !== null && timeZone !== 'UTC') {
      try {
        zone = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', weekday: 'short' });
      } catch {
        throw new PreforkError('INVALID_OPTION', `unknown time zone "${String(timeZone)}" (an IANA name such as Europe/Berlin, or UTC)`, { exitCode: 2 });
      }
    }
    const schedule = new CronSchedule(
      expression,
      parse('second', second!),
      parse('minute', minute!),
      parse('hour', hour!),
      parse('day', day!),
      parse('month', month!),
      weekdays,
      !isStar(day!) && !isStar(weekday!),
      hasSeconds,
      zone ? timeZone! : null,
      zone,
    );
    if (!schedule.next(new Date())) throw bad(`it matches no time in the next ${horizonYears} years`);
    return schedule;
  }

  /** The first time strictly after `after` that the expression matches (whole seconds), or null within the horizon. */
  next(after: Date): Date | null {
    return this.zone ? this.#nextInZone(after, this.zone) : this.#nextInUtc(after);
  }

  #nextInUtc(after: Date): Date | null {
    const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
    const limit = t.getUTCFullYear() + horizonYears;
    while (t.getUTCFullYear() <= limit) {
      if (!this.month.has(t.getUTCMonth() + 1)) {
        t.setUTCMonth(t.getUTCMonth() + 1, 1);
        t.setUTCHours(0, 0, 0, 0);
      } else if (!this.#dayMatches(t.getUTCDate(), t.getUTCDay())) {
        t.setUTCDate(t.getUTCDate() + 1);
        t.setUTCHours(0, 0, 0, 0);
      } else if (!this.hour.has(t.getUTCHours())) {
        t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
      } else if (!this.minute.has(t.getUTCMinutes())) {
        t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
      } else if (!this.second.has(t.getUTCSeconds())) {
        t.setUTCSeconds(t.getUTCSeconds() + 1, 0);
      } else {
        return t;
      }
    }
    return null;
  }

  /** The last time at or before `at` that the expression matches, looking back no further than `since` (exclusive). */
  latest(at: Date, since: Date): Date | null {
    let found: Date | null = null;
    for (let t = this.next(since); t && t.getTime() <= at.getTime(); t = this.next(t)) found = t;
    return found;
  }

  /**
   * In a time zone the fields are read off the zone's wall clock, stepping through UTC time: a day or month that
   * does not match skips to about its end, an hour or minute to the next. A wall-clock time the zone skips (the
   * hour lost when clocks go forward) does not run that day; one it repeats (the hour when clocks go back) runs
   * once, at its first occurrence: a match must read later on the wall clock than `after` does.
   */
  #nextInZone(after: Date, zone: Intl.DateTimeFormat): Date | null {
    let t = Math.floor(after.getTime() / 1000) * 1000 + 1000;
    const floor = wallClockKey(zoneFields(zone, after.getTime()));
    const limit = t + (horizonYears + 1) * 366 * 86_400_000;
    while (t <= limit) {
      const f = zoneFields(zone, t);
      const intoDay = f.hour * 3600 + f.minute * 60 + f.second;
      if (!this.month.has(f.month) || !this.#dayMatches(f.day, f.weekday)) {
        // Towards the day's end, two hours short so that a clock change cannot carry it past the next midnight.
        t += Math.max(3600, 86_400 - intoDay - 7200) * 1000;
      } else if (!this.hour.has(f.hour)) {
        t += (3600 - f.minute * 60 - f.second) * 1000;
      } else if (!this.minute.has(f.minute)) {
        t += (60 - f.second) * 1000;
      } else if (!this.second.has(f.second) || wallClockKey(f) <= floor) {
        t += (this.hasSeconds ? 1 : 60 - f.second) * 1000;
      } else {
        return new Date(t);
      }
    }
    return null;
  }

  #dayMatches(date: number, weekdayNumber: number): boolean {
    const day = this.day.has(date);
    const weekday = this.weekday.has(weekdayNumber);
    return this.dayOrWeekday ? day || weekday : day && weekday;
  }
}

interface ZoneFields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
}

const weekdayNumbers: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

function zoneFields(zone: Intl.DateTimeFormat, t: number): ZoneFields {
  const f: ZoneFields = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, weekday: 0 };
  for (const part of zone.formatToParts(t)) {
    if (part.type === 'weekday') f.weekday = weekdayNumbers[part.value] ?? 0;
    else if (part.type in f) f[part.type as keyof ZoneFields] = Number(part.value);
  }
  return f;
}

/** The wall-clock time as one number, for ordering: YYYYMMDDhhmmss. */
function wallClockKey(f: ZoneFields): number {
  return ((((f.year * 100 + f.month) * 100 + f.day) * 100 + f.hour) * 100 + f.minute) * 100 + f.second;
}

function isStar(value: string): boolean {
  return value === '*' || value === '?';
}

function parseField(value: string, field: Field, bad: (why: string) => PreforkError): Set<number> {
  const out = new Set<number>();
  const number = (s: string): number => {
    const byName = field.names?.indexOf(s.toUpperCase()) ?? -1;
    if (byName >= 0) return byName + (field.min === 1 ? 1 : 0);
    if (!/^\d+$/.test(s)) throw bad(`"${s}" is not a number${field.names ? ' or a name' : ''}`);
    const n = Number(s);
    if (n < field.min || n > field.max) throw bad(`${n} is outside ${field.min}-${field.max}`);
    return n;
  };
  for (const item of value.split(',')) {
    const [range, stepText, extra] = item.split('/');
    if (extra !== undefined || range === undefined || range === '') throw bad(`"${item}" is not a value, range or step`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) < 1) throw bad(`step "${stepText}" must be a whole number from 1`);
      step = Number(stepText);
    }
    let from: number;
    let to: number;
    if (isStar(range)) {
      [from, to] = [field.min, field.max];
    } else if (range.includes('-')) {
      const [a, b, more] = range.split('-');
      if (more !== undefined || !a || !b) throw bad(`"${range}" is not a range`);
      [from, to] = [number(a), number(b)];
      if (from > to) throw bad(`range ${range} runs backwards`);
    } else {
      from = number(range);
      // `5/15`: from 5 to the end of the field, every 15.
      to = stepText === undefined ? from : field.max;
    }
    for (let n = from; n <= to; n += step) out.add(n);
  }
  return out;
}
