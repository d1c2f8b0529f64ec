/** Validation of EmbeddedPostgresOptions: one exact message per mistake. */

/** Settings the launcher sets itself; callers use `port` instead. */
const MANAGED_SETTINGS = new Set(['port', 'unix_socket_directories', 'data_directory']);
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;

export interface ValidatedOptions {
  readonly dataDir: string;
  readonly port: number | undefined;
  readonly settings: Readonly<Record<string, string>>;
}

export function validateOptions(options: {
  dataDir: unknown;
  port?: unknown;
  settings?: unknown;
}): ValidatedOptions {
  const { dataDir, port, settings = {} } = options;
  if (typeof dataDir !== 'string' || dataDir === '') throw new Error('dataDir must be a non-empty string');
  if (port !== undefined && !(Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535)) {
    throw new Error('port must be an integer from 1 to 65535');
  }
  if (typeof settings !== 'object' || settings === null) throw new Error('settings must be an object');
  for (const [name, value] of Object.entries(settings)) {
    if (!SETTING_NAME.test(name)) throw new Error(`settings: "${name}" is not a PostgreSQL setting name`);
    if (MANAGED_SETTINGS.has(name)) throw new Error(`settings: "${name}" is set by the launcher`);
    if (typeof value !== 'string') throw new Error(`settings: the value of "${name}" must be a string`);
  }
  return { dataDir, port: port as number | undefined, settings: settings as Record<string, string> };
}
