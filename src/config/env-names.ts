/** `--max-db-connections` is read from PREFORK_MAX_DB_CONNECTIONS; a few options have a conventional name too. */
import type { Option } from 'commander';

/** Read after the PREFORK_ name, which wins when both are set. */
const aliases: Record<string, string[]> = { databaseUrl: ['DATABASE_URL'] };

export function envNamesFor(option: Option): string[] {
  const flag = (option.long ?? '').replace(/^--(no-)?/, '');
  return [`PREFORK_${flag.replace(/-/g, '_').toUpperCase()}`, ...(aliases[option.attributeName()] ?? [])];
}
