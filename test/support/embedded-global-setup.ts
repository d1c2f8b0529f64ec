import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../src/embedded/postgres.js';

/**
 * vitest globalSetup: without DATABASE_URL, start an embedded PostgreSQL on a fresh temporary data dir and
 * export its DATABASE_URL, which test workers and the subprocesses they spawn inherit (globalSetup runs in
 * vitest's main process before the workers start). With DATABASE_URL set, it does nothing.
 */
export default async function setup(): Promise<(() => Promise<void>) | void> {
  if (process.env.DATABASE_URL) return;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'prefork-test-pg-'));
  try {
    const server = await startEmbeddedPostgres({
      dataDir,
      // Durability across an OS crash is no concern for a throwaway test cluster.
      settings: { fsync: 'off', full_page_writes: 'off' },
    });
    process.env.DATABASE_URL = server.connectionString;
    return async () => {
      delete process.env.DATABASE_URL;
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    };
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}
