import type { Command } from 'commander';

export function addDatabaseOptions(command: Command): Command {
  return command
    .option('--database-url <url>', 'PostgreSQL connection string (default: $DATABASE_URL; without either, the embedded PostgreSQL)')
    .option('--schema <name>', 'schema that holds the queue (default: $PREFORK_SCHEMA or prefork)')
    .option('--data-dir <dir>', "the embedded PostgreSQL's data dir, its state file beside it (default: $PREFORK_DATA_DIR or .prefork/pgdata)");
}
