// Cron expressions, in UTC: `minute hour day-of-month month day-of-week`, or six fields with seconds first.
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
  ) {}

  /** Parses `expression`, or throws INVALID_OPTION with what is wrong. */
  static parse(expression: string): CronSchedule {
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
    );
    if (!schedule.next(new Date())) throw bad(`it matches no time in the next ${horizonYears} years`);
    return schedule;
  }

  /** The first time strictly after `after` that the expression matches (UTC, whole seconds), or null within the horizon. */
  next(after: Date): Date | null {
    const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
    const limit = t.getUTCFullYear() + horizonYears;
    while (t.getUTCFullYear() <= limit) {
      if (!this.month.has(t.getUTCMonth() + 1)) {
        t.setUTCMonth(t.getUTCMonth() + 1, 1);
        t.setUTCHours(0, 0, 0, 0);
      } else if (!this.#dayMatches(t)) {
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

  #dayMatches(t: Date): boolean {
    const day = this.day.has(t.getUTCDate());
    const weekday = this.weekday.has(t.getUTCDay());
    return this.dayOrWeekday ? day || weekday : day && weekday;
  }
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
