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

/** Resolves with performance.now() once `count` ids arrived on `channel` (comma-separated payloads). */
export function countNotifiedIds(client, channel, count, timeoutMs) {
  let seen = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('notification', on);
      reject(new Error(`timed out after ${timeoutMs} ms: ${seen} of ${count} completions notified on ${channel}`));
    }, timeoutMs);
    const on = (n) => {
      if (n.channel !== channel || !n.payload) return;
      seen += n.payload.split(',').length;
      if (seen >= count) {
        clearTimeout(timer);
        client.off('notification', on);
        resolve(performance.now());
      }
    };
    client.on('notification', on);
  });
}
