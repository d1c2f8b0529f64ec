/** Where each option's value came from, per command: what `prefork config` shows and errors name. */
import type { Command } from 'commander';

export type ValueSource = 'default' | 'config file' | 'env' | 'flag';

export interface ValueOrigin {
  source: ValueSource;
  /** The environment variable or the config file's path. */
  from?: string;
}

const origins = new WeakMap<Command, Map<string, ValueOrigin>>();
/** The same maps, by the command's option values object (what its action receives as `flags`). */
const byValues = new WeakMap<object, Map<string, ValueOrigin>>();

export function recordOrigin(command: Command, key: string, origin: ValueOrigin): void {
  let map = origins.get(command);
  if (!map) origins.set(command, (map = new Map()));
  map.set(key, origin);
  byValues.set(command.opts(), map);
}

/** Where an action's flag came from; undefined when nothing was recorded (the command line, as before). */
export function originOf(flags: object, key: string): ValueOrigin | undefined {
  return byValues.get(flags)?.get(key);
}

/** For messages: `--database-url`, `DATABASE_URL`, or `databaseUrl in prefork.config.json`. */
export function nameOrigin(origin: ValueOrigin | undefined, key: string, flag: string): string {
  if (origin?.source === 'env' && origin.from) return origin.from;
  if (origin?.source === 'config file' && origin.from) return `${key} in ${origin.from}`;
  return flag;
}

/** The origins recorded while the command's options were resolved (empty before its action runs). */
export function originsOf(command: Command): ReadonlyMap<string, ValueOrigin> {
  return origins.get(command) ?? new Map();
}

export function describeOrigin(origin: ValueOrigin | undefined): string {
  if (!origin) return 'default';
  return origin.from ? `${origin.source} ${origin.from}` : origin.source;
}

const configFiles = new WeakMap<Command, string | null>();

export function recordConfigFile(command: Command, path: string | null): void {
  configFiles.set(command, path);
}

/** The config file the command read (absolute), or null. */
export function configFileOf(command: Command): string | null {
  return configFiles.get(command) ?? null;
}
