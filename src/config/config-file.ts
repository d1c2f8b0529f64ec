/**
 * The optional JSON config file: `--config PATH` (or PREFORK_CONFIG), else `prefork.config.json` in the working
 * directory when there is one. Keys are the options' camelCase names; any other key is an error.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PreforkError } from '../errors.js';

export const defaultConfigFileName = 'prefork.config.json';

export interface ConfigFile {
  /** Absolute. */
  path: string;
  /** As the user gave it, or the default name: for messages. */
  display: string;
  values: Record<string, unknown>;
}

/**
 * `given` is the path from --config or PREFORK_CONFIG (with `where` naming it for errors); without it, the
 * default file if present. A named file that does not exist is an error; a missing default file is not.
 */
export function readConfigFile(given: { path: string; where: string } | undefined, cwd = process.cwd()): ConfigFile | null {
  // An empty path would read the working directory (EISDIR): said as other flags say it.
  if (given && given.path.trim() === '') throw usage(`${given.where} must not be empty`);
  const display = given?.path ?? defaultConfigFileName;
  const file = path.resolve(cwd, display);
  if (!given && !existsSync(file)) return null;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw usage(`${given?.where ?? display}: cannot read the config file: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  let values: unknown;
  try {
    values = JSON.parse(text);
  } catch (error) {
    throw usage(`${display}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    throw usage(`${display}: must hold one JSON object, like {"workers": 4}`);
  }
  return { path: file, display, values: values as Record<string, unknown> };
}

/** One line naming every unknown key and listing the valid ones. */
export function checkConfigKeys(file: ConfigFile, validKeys: readonly string[]): void {
  const unknown = Object.keys(file.values).filter((k) => !validKeys.includes(k));
  if (unknown.length === 0) return;
  const names = unknown.map((k) => JSON.stringify(k)).join(', ');
  throw usage(`${file.display}: unknown key${unknown.length === 1 ? '' : 's'} ${names}; valid keys: ${[...validKeys].sort().join(', ')}`);
}

export function usage(message: string): PreforkError {
  return new PreforkError('BAD_CONFIGURATION', message, { exitCode: 2 });
}
