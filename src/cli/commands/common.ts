import type { Command } from 'commander';

export function addDatabaseOptions(command: Command): Command {
  return command
    .option('--database-url <url>', 'PostgreSQL connection string (default: $DATABASE_URL)')
    .option('--schema <name>', 'schema that holds the queue (default: $PREFORK_SCHEMA or prefork)');
}
