/**
 * A value from the environment or the config file, put through the same parser as the flag, so a bad value
 * fails the same way: one line naming where it came from, e.g.
 * `PREFORK_WORKERS=abc: --workers must be a whole number from 1 to 1024`.
 */
import type { Option } from 'commander';
import { redactConnectionString } from '../db/connection-string.js';
import { usage } from './config-file.js';

const truthy = new Set(['1', 'true', 'yes', 'on']);
const falsy = new Set(['0', 'false', 'no', 'off']);

export function isBooleanOption(option: Option): boolean {
  return !option.required && !option.optional;
}

/** How a raw value is shown in a message; anything that may hold a password is redacted. */
export function showRaw(key: string, raw: unknown): string {
  const text = typeof raw === 'string' ? raw : JSON.stringify(raw);
  return /url|password|secret/i.test(key) ? redactConnectionString(text) : text;
}

/**
 * `raw` is a string (environment) or a JSON value (config file). `where` prefixes errors. A boolean option's
 * value is the value of its attribute (PREFORK_PRETTY=false is --no-pretty).
 */
export function parseOptionValue(option: Option, raw: unknown, where: string, previous: unknown, name?: string): unknown {
  const flag = option.long ?? option.flags;
  if (isBooleanOption(option)) {
    if (typeof raw === 'boolean') return raw;
    if (raw === 1 || raw === 0) return raw === 1;
    const text = String(raw).trim().toLowerCase();
    if (typeof raw === 'string' && truthy.has(text)) return true;
    if (typeof raw === 'string' && falsy.has(text)) return false;
    // Named as it was given: its flag (--pretty, --no-local-socket), or the setting an only-negative flag sets.
    throw usage(`${where}: ${name ?? flag} must be true or false (or 1/0, yes/no, on/off)`);
  }
  let text: string;
  if (typeof raw === 'string') text = raw;
  // A number only where the option takes one (a path or a name of 123 is a slip), a list only of strings.
  else if (typeof raw === 'number' && Number.isFinite(raw) && option.parseArg) text = String(raw);
  else if (Array.isArray(raw) && raw.length > 0 && raw.every((v) => typeof v === 'string') && option.parseArg) text = raw.join(',');
  else throw usage(`${where}: ${flag} takes a value (a string${option.parseArg ? ' or a number' : ''}), not ${JSON.stringify(raw)}`);
  if (!option.parseArg) return text;
  try {
    return option.parseArg(text, previous);
  } catch (error) {
    const message = (error as Error)?.message ?? String(error);
    const flagged = message.startsWith(flag) ? message : message.startsWith('must ') ? `${flag} ${message}` : `${flag}: ${message}`;
    throw usage(`${where}: ${flagged}`);
  }
}
