/** A dedicated LISTEN connection, closed by the scope that opened it. */
import pg from 'pg';
import { databaseUrl, quoteIdent } from './db.js';

export async function listenConnection(defer, channels, url = databaseUrl) {
  const client = new pg.Client({ connectionString: url, application_name: 'prefork bench listener' });
  client.on('error', () => {});
  await client.connect();
  defer('listen connection', () => client.end().catch(() => {}));
  for (const c of channels) await client.query(`listen ${quoteIdent(c)}`);
  return client;
}
