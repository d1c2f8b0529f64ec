/** `--max-db-connections` is read from PREFORK_MAX_DB_CONNECTIONS; a few options have a conventional name too. */
import type { Option } from 'commander';

/** Read after the PREFORK_ name, which wins when both are set. */
const aliases: Record<string, string[]> = { databaseUrl: ['DATABASE_URL'] };

export function envNamesFor(option: Option): string[] {
  return envSourcesFor(option).map((s) => s.name);
}

/**
 * The variables an option is read from, in order. An option that exists only as `--no-x` (`--no-local-socket`)
 * is read from PREFORK_NO_X with the flag's meaning (`PREFORK_NO_LOCAL_SOCKET=1` is the flag given), then from
 * PREFORK_X with the setting's (`PREFORK_LOCAL_SOCKET=0`, the same).
 */
export function envSourcesFor(option: Option): { name: string; inverted: boolean }[] {
  const flag = (option.long ?? '').replace(/^--(no-)?/, '');
  const name = `PREFORK_${flag.replace(/-/g, '_').toUpperCase()}`;
  const aliased = (aliases[option.attributeName()] ?? []).map((alias) => ({ name: alias, inverted: false }));
  if (option.negate) return [{ name: `PREFORK_NO_${name.slice('PREFORK_'.length)}`, inverted: true }, { name, inverted: false }, ...aliased];
  return [{ name, inverted: false }, ...aliased];
}
