/**
 * Task connections reach a server named by a loopback TCP URL over its Unix socket, only when that socket
 * answers as the same server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '../src/index.js';
import { preferLocalSocket, socketDirectories, socketUrlFor } from '../src/db/local-socket.js';
import { admin, databaseUrl, useTestSchema } from './support/database.js';
import { runCli, startWithFixtures, useProcessLeakGuard } from './support/processes.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The test server's socket directory and port, whichever way DATABASE_URL reaches it. */
function serverSocket(): { dir: string; port: string } {
  const url = new URL(databaseUrl());
  const port = url.port || '5432';
  const dir = url.searchParams.get('host') ?? new URL(socketUrlFor(databaseUrl()) ?? 'postgres://x/?host=').searchParams.get('host');
  if (!dir) throw new Error(`the test server has no Unix socket in ${socketDirectories.join(', ')}`);
  return { dir, port };
}

/** The same user, database and port as the test server, as a loopback TCP URL. */
function loopbackUrl(port: string): string {
  const url = new URL(databaseUrl());
  const out = new URL(`postgres://127.0.0.1:${port}${url.pathname}`);
  out.username = url.username;
  out.password = url.password;
  return out.toString();
}

describe('local socket', () => {
  it('rewrites a loopback TCP URL to the socket of the same server, and leaves other URLs alone', async () => {
    const { dir, port } = serverSocket();
    const db = await admin();
    const tcp = loopbackUrl(port);
    const chosen = await preferLocalSocket(tcp, db, { dirs: ['/nonexistent', dir] });
    expect(chosen.socketDir).toBe(dir);
    expect(new URL(chosen.url).searchParams.get('host')).toBe(dir);
    // The rewritten URL works and arrives over the socket.
    const client = new pg.Client({ connectionString: chosen.url });
    await client.connect();
    cleanups.push(() => client.end());
    expect((await client.query('select inet_client_addr() as addr')).rows).toEqual([{ addr: null }]);

    expect(socketUrlFor('postgres://db.example.com:5432/app', [dir])).toBeNull();
    expect(socketUrlFor(`${tcp}?sslmode=require`, [dir])).toBeNull();
    expect(socketUrlFor(`postgres://127.0.0.1:${port}/app?host=/elsewhere`, [dir])).toBeNull();
    expect(socketUrlFor(tcp, ['/nonexistent'])).toBeNull();
  });

  it('keeps the TCP URL when what answers on the socket is not that server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prefork-sock-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { port } = serverSocket();
    // Something else listens on the path PostgreSQL would use: it hangs up at once.
    const impostor = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => impostor.listen(join(dir, `.s.PGSQL.${port}`), resolve));
    cleanups.push(() => new Promise((resolve) => impostor.close(resolve)));
    const tcp = loopbackUrl(port);
    expect(socketUrlFor(tcp, [dir])).toContain(encodeURIComponent(dir));
    expect(await preferLocalSocket(tcp, await admin(), { dirs: [dir], timeoutMs: 1_000 })).toEqual({ url: tcp, socketDir: null });
  });

  it('takes a URL with a user and no host, the socket directory in its query (as pg and psql do), and never prints its password', async () => {
    const schema = schemaName();
    const { dir, port } = serverSocket();
    const given = new URL(databaseUrl());
    // A server that trusts local connections asks for none: any password then, to see that it is not printed.
    const password = decodeURIComponent(given.password) || 'never-printed-9f3';
    const url = `postgres://${given.username}:${encodeURIComponent(password)}@${given.pathname}?host=${dir}&port=${port}`;
    const shown = `postgres://${given.username}:***@${given.pathname}?host=${dir}&port=${port}`;

    const sup = startWithFixtures(schema, ['--workers', '1', '--database-url', url]);
    await sup.ready();
    expect(sup.events('supervisor_starting')).toEqual([expect.objectContaining({ database: shown })]);
    const status = await runCli(['status', '--database-url', url], { schema });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/: running, 1 worker/);
    const sent = await runCli(['send', 'prefork.echo', '{"hi":1}', '--wait', '--database-url', url], { schema });
    expect(sent).toEqual({ code: 0, stdout: '{"hi":1}\n', stderr: '' });
    const config = await runCli(['config', '--json', '--database-url', url]);
    expect(JSON.parse(config.stdout).options.databaseUrl).toMatchObject({ value: shown, source: 'flag' });
    // Where nothing listens, the error names the URL, without the password.
    const nowhere = await runCli(['status', '--database-url', url.replace(`host=${dir}`, 'host=/nonexistent-prefork')], { schema });
    expect(nowhere).toEqual({
      code: 3,
      stdout: '',
      stderr: `prefork: error: cannot use the database at ${shown.replace(`host=${dir}`, 'host=/nonexistent-prefork')}: connect ENOENT /nonexistent-prefork/.s.PGSQL.${port}\n`,
    });
    await sup.stop();
    for (const text of [sup.stdout(), sup.stderr, status.stdout, status.stderr, config.stdout, nowhere.stderr]) expect(text).not.toContain(password);
  });

  it('the supervisor gives its workers the socket unless --no-local-socket', async () => {
    const overTcp = socketUrlFor(databaseUrl()) !== null;
    for (const [args, expected] of [
      [[], null],
      [['--no-local-socket'], overTcp ? '127.0.0.1' : null],
    ] as const) {
      const schema = schemaName();
      const sup = startWithFixtures(schema, ['--workers', '1', ...args]);
      await sup.ready();
      const prefork = new Client({ connectionString: databaseUrl(), schema });
      const task = await prefork.run('fixture.clientAddr', {}, { timeoutMs: 10_000 });
      await prefork.close();
      expect(task.result).toEqual({ addr: expected });
      expect(sup.events('database_local_socket').length).toBe(overTcp && args.length === 0 ? 1 : 0);
      await sup.stop();
      await (await admin()).query(`drop schema "${schema}" cascade`);
    }
  });
});
