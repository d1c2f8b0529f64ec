/** `prefork config`: the configuration `prefork start` would run with here, and where each value comes from. */
import { availableParallelism } from 'node:os';
import { Command, type Option } from 'commander';
import { envNamesFor } from '../../config/env-names.js';
import { configFileOf, describeOrigin, originsOf, type ValueOrigin } from '../../config/origins.js';
import { redactConnectionString } from '../../db/connection-string.js';
import { DEFAULT_DATA_DIR, displayPath, resolveDatabase, type DatabaseFlags } from '../database.js';
import { addStartOptions } from './start.js';

export interface ConfigEntry {
  flag: string;
  value: unknown;
  source: ValueOrigin['source'];
  /** The environment variable or config file, when the value came from one. */
  from?: string;
  /** Where start reads this option from, besides the flag. */
  env: string[];
}

export interface ConfigReport {
  configFile: string | null;
  options: Record<string, ConfigEntry>;
}

/** Unset options whose value start decides at run time. */
const whenUnset: Record<string, (() => unknown) | string> = {
  workers: () => availableParallelism(),
  tasks: 'none: the built-in tasks only',
  databaseUrl: 'none: the embedded PostgreSQL',
  schema: () => 'prefork',
  dataDir: () => DEFAULT_DATA_DIR,
  pretty: 'auto: pretty when stdout is a terminal',
  prefetch: 'auto: from 2 × workers × concurrency, growing with the throughput up to 1,000',
  maxDbConnections: "auto: from the server's max_connections",
  metricsPort: 'none: no metrics server',
};

export function configCommand(): Command {
  const command = new Command('config').description(
    'print the configuration start would use here (flags, environment, config file, defaults) and where each value comes from; passwords redacted',
  );
  addStartOptions(command);
  command.option('--json', 'print one JSON object: { configFile, options: { <key>: { flag, value, source, from, env } } }');
  command.addHelpText(
    'after',
    `
Give the same flags as to start to see what they change. Exit 2 when a value (flag, environment or config file)
is invalid, exactly as start would.

Examples:
  $ prefork config
  $ PREFORK_WORKERS=8 prefork config --json | jq .options.workers`,
  );
  return command.action((flags: DatabaseFlags & Record<string, unknown> & { json?: boolean }, self: Command) => {
    resolveDatabase(flags); // the same checks as start (schema name, --data-dir with a URL)
    const report = configReport(self, flags);
    process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : renderConfig(report));
  });
}

export function configReport(command: Command, values: Record<string, unknown>): ConfigReport {
  const origins = originsOf(command);
  const options: Record<string, ConfigEntry> = {};
  for (const option of startOptions()) {
    const key = option.attributeName();
    const origin = origins.get(key) ?? { source: 'default' as const };
    let value = values[key];
    if (value === undefined) {
      const unset = whenUnset[key];
      value = typeof unset === 'function' ? unset() : null;
    }
    if (typeof value === 'string' && /url|password/i.test(key)) value = redactConnectionString(value);
    options[key] = { flag: option.long!, value, source: origin.source, ...(origin.from ? { from: origin.from } : {}), env: envNamesFor(option) };
  }
  const file = configFileOf(command);
  return { configFile: file, options };
}

export function renderConfig(report: ConfigReport): string {
  const rows = Object.entries(report.options).map(([key, e]) => {
    const unset = whenUnset[key];
    // An only-negative flag shows its own value (--no-local-socket false while the socket is used); JSON has the setting's.
    const value = e.flag.startsWith('--no-') && typeof e.value === 'boolean' ? !e.value : e.value;
    const shown = value === null ? (typeof unset === 'string' ? `(${unset})` : '(not set)') : Array.isArray(value) ? value.join(',') : String(value);
    return [e.flag, shown, describeOrigin(e)];
  });
  const width = (i: number) => Math.max(...rows.map((r) => r[i]!.length));
  const [w0, w1] = [width(0), Math.min(width(1), 48)];
  const header = `configuration of prefork start (config file: ${report.configFile ? displayPath(report.configFile) : 'none'})`;
  return `${[header, ...rows.map(([flag, value, source]) => `  ${flag!.padEnd(w0)}  ${value!.padEnd(w1)}  ${source}`)].join('\n')}\n`;
}

/** start's options, one per key (the positive one of --pretty/--no-pretty). */
function startOptions(): Option[] {
  const seen = new Map<string, Option>();
  for (const option of addStartOptions(new Command('start')).options as Option[]) {
    const key = option.attributeName();
    if (!seen.has(key) || (seen.get(key)!.negate && !option.negate)) seen.set(key, option);
  }
  return [...seen.values()];
}
