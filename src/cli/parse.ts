/** Option parsers for commander: each failure is one exact line, exit code 2. */
import { InvalidArgumentError } from 'commander';
import { logLevels } from '../logger.js';

export function integer(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
}

export function logLevel(value: string): string {
  if (!logLevels.includes(value as never)) throw new InvalidArgumentError(`must be one of ${logLevels.join(', ')}`);
  return value;
}

export function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new InvalidArgumentError(`the payload is not valid JSON (${(error as Error).message})`);
  }
}

export function queueList(value: string): string[] {
  const names = value.split(',').map((q) => q.trim()).filter(Boolean);
  if (names.length === 0) throw new InvalidArgumentError('give at least one queue name');
  return names;
}
