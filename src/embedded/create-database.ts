import pg from 'pg';

/** Creates database `name` (a quoted identifier, so any name is safe) on the server at `connectionString`. */
export async function createDatabase(connectionString: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(`create database ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}
