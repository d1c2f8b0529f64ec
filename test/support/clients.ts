/** What a test opens (clients, connections) is closed after it, pass or fail. */
import { afterEach } from 'vitest';
import { Client } from '../../src/index.js';
import { databaseUrl } from './database.js';

export interface Closers {
  /** A Client on the test database and `schema`, closed after the test. */
  client(schema: string): Client;
  /** Closes `thing` after the test. */
  closeLater(thing: { close(): Promise<unknown> }): void;
}

export function useClients(): Closers {
  const open: { close(): Promise<unknown> }[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
  });
  return {
    client(schema) {
      const c = new Client({ connectionString: databaseUrl(), schema });
      open.push(c);
      return c;
    },
    closeLater(thing) {
      open.push(thing);
    },
  };
}
