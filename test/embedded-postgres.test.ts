import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import ts from 'typescript';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createDatabase,
  type EmbeddedPostgres,
  type EmbeddedPostgresOptions,
  startEmbeddedPostgres,
} from '../src/embedded/postgres.js';
import { isProcessAlive, readStateFile, removeStateFile, writeStateFile } from '../src/embedded/state-file.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const running: EmbeddedPostgres[] = [];
const postmasterPids: number[] = [];
const tempDirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'prefork-embedded-test-'));
  tempDirs.push(dir);
  return dir;
}

async function start(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const server = await startEmbeddedPostgres(options);
  running.push(server);
  postmasterPids.push(server.pid);
  return server;
}

async function query<Row extends object>(connectionString: string, sql: string): Promise<Row[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<Row>(sql)).rows;
  } finally {
    await client.end();
  }
}

// Leak guard: every server a test started is stopped, and its postmaster gone, after the test.
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()));
  const leaked = postmasterPids.splice(0).filter(isProcessAlive);
  for (const pid of leaked) process.kill(pid, 'SIGQUIT');
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  expect(leaked, 'postmasters left running').toEqual([]);
});

describe('a running embedded server', () => {
  let shared: EmbeddedPostgres;
  let sharedDir: string;
  let tcpPort: number;

  beforeAll(async () => {
    sharedDir = await mkdtemp(path.join(os.tmpdir(), 'prefork-embedded-test-'));
    tcpPort = await freePortBelowEphemeralRange();
    shared = await startEmbeddedPostgres({ dataDir: sharedDir, port: tcpPort, settings: { max_connections: '20' } });
  });

  afterAll(async () => {
    await shared?.stop();
    await rm(sharedDir, { recursive: true, force: true });
    expect(shared && isProcessAlive(shared.pid), 'shared postmaster left running').toBeFalsy();
  });

  it('answers over a Unix socket in its data dir', async () => {
    expect(shared.dataDir).toBe(sharedDir);
    expect(shared.socketDir).toBe(sharedDir);
    expect(shared.port).toBe(tcpPort);
    expect(shared.connectionString).toBe(
      `postgres://postgres@localhost:${tcpPort}/postgres?host=${encodeURIComponent(sharedDir)}`,
    );
    expect(await query(shared.connectionString, 'select 1 as one')).toEqual([{ one: 1 }]);
  });

  it('applies extra settings', async () => {
    expect(await query(shared.connectionString, 'show max_connections')).toEqual([{ max_connections: '20' }]);
  });

  it('also listens on 127.0.0.1 when given a port', async () => {
    const tcp = `postgres://postgres@127.0.0.1:${tcpPort}/postgres`;
    expect(await query(tcp, 'select current_user as who')).toEqual([{ who: 'postgres' }]);
  });

  it('refuses a second start on the same data dir', async () => {
    await expect(startEmbeddedPostgres({ dataDir: sharedDir })).rejects.toThrow(
      `PostgreSQL is already running on ${sharedDir} (pid ${shared.pid}); stop it first`,
    );
  });

  it('creates a database whose name needs quoting', async () => {
    await createDatabase(shared.connectionString, 'needs "quoting"');
    const url = new URL(shared.connectionString);
    url.pathname = `/${encodeURIComponent('needs "quoting"')}`;
    expect(await query(url.toString(), 'select current_database() as name')).toEqual([{ name: 'needs "quoting"' }]);
  });
});

describe('embedded server lifecycle', () => {
  it('initialises a new data dir, listens on the socket only, and stops idempotently', async () => {
    const dataDir = path.join(await tempDir(), 'new', 'data');
    const server = await start({ dataDir });
    expect(server.port).toBe(5432);
    expect(await query(server.connectionString, 'show listen_addresses')).toEqual([{ listen_addresses: '' }]);

    await server.stop();
    expect(isProcessAlive(server.pid)).toBe(false);
    await server.stop();
  });

  it('keeps data across a restart on the same data dir', async () => {
    const dataDir = await tempDir();
    const first = await start({ dataDir });
    await query(first.connectionString, 'create table kept (value text); insert into kept values ($$hello$$)');
    await first.stop();

    const second = await start({ dataDir });
    expect(await query(second.connectionString, 'select value from kept')).toEqual([{ value: 'hello' }]);
  });

  it('recovers from a stale postmaster.pid', async () => {
    const dataDir = await tempDir();
    await (await start({ dataDir })).stop();
    const pidFile = path.join(dataDir, 'postmaster.pid');

    // A live pid that is not a postgres (PostgreSQL itself would refuse this one)...
    await writeFile(pidFile, `${process.pid}\n${dataDir}\n`);
    await (await start({ dataDir })).stop();

    // ...and a dead one.
    await writeFile(pidFile, `${spawnSync('true').pid}\n${dataDir}\n`);
    const server = await start({ dataDir });
    expect(await query(server.connectionString, 'select 1 as one')).toEqual([{ one: 1 }]);
  });

  it('initialises again a data dir whose initdb was killed part-way, never a cluster a server has run on', async () => {
    // A cluster used before the marker existed (started, holding data): kept as it is.
    const used = await tempDir();
    const first = await start({ dataDir: used });
    await query(first.connectionString, 'create table kept (value text); insert into kept values ($$hello$$)');
    await first.stop();
    const version = await readFile(path.join(used, 'PG_VERSION'), 'utf8');
    await rm(path.join(used, 'prefork-initdb-done'), { force: true });
    const again = await start({ dataDir: used });
    expect(await query(again.connectionString, 'select value from kept')).toEqual([{ value: 'hello' }]);
    await again.stop();

    // What an initdb killed after writing PG_VERSION leaves; and one killed before it.
    for (const withVersion of [true, false]) {
      const broken = await tempDir();
      for (const dir of ['base/1', 'global', 'pg_wal', 'pg_xact']) await mkdir(path.join(broken, dir), { recursive: true });
      await writeFile(path.join(broken, 'postgresql.conf'), '');
      if (withVersion) await writeFile(path.join(broken, 'PG_VERSION'), version);
      const warnings: string[] = [];
      const server = await start({ dataDir: broken, log: { info: () => {}, warn: (_obj, msg) => warnings.push(msg ?? '') } });
      expect(await query(server.connectionString, 'select current_database() as db')).toEqual([{ db: 'postgres' }]);
      expect(warnings).toEqual(['embedded_initdb_redone']);
      await server.stop();
    }

    // A directory holding anything else is never emptied.
    const foreign = await tempDir();
    await mkdir(path.join(foreign, 'base'));
    await writeFile(path.join(foreign, 'notes.txt'), 'mine');
    await expect(startEmbeddedPostgres({ dataDir: foreign })).rejects.toThrow(/is not empty and holds no PostgreSQL cluster/);
    expect(await readFile(path.join(foreign, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('reports the server log when the server cannot start', async () => {
    const failure = startEmbeddedPostgres({ dataDir: await tempDir(), settings: { shared_buffers: 'plenty' } });
    await expect(failure).rejects.toThrow(/exited during start-up.*\n.*invalid value for parameter "shared_buffers"/);
  });

  it('uses a short socket dir when the data dir path is too long for a socket', async () => {
    const dataDir = path.join(await tempDir(), 'x'.repeat(100));
    const server = await start({ dataDir });
    expect(server.socketDir).not.toContain(dataDir);
    expect(await query(server.connectionString, 'select 1 as one')).toEqual([{ one: 1 }]);
    await server.stop();
    await expect(readdir(server.socketDir)).rejects.toThrow(/ENOENT/);

    // Killed with nothing to clean up after it (its supervisor SIGKILLed): the next start takes the same dir.
    const killed = await start({ dataDir });
    running.splice(running.indexOf(killed), 1);
    process.kill(killed.pid, 'SIGKILL');
    await expect.poll(() => isProcessAlive(killed.pid)).toBe(false);
    const next = await start({ dataDir });
    expect(next.socketDir).toBe(killed.socketDir);
    expect(await query(next.connectionString, 'select 1 as one')).toEqual([{ one: 1 }]);
    await next.stop();
    await expect(readdir(next.socketDir)).rejects.toThrow(/ENOENT/);
  });

  it('dies with its parent process', async () => {
    const dataDir = await tempDir();
    const launcher = await transpileLauncher(await tempDir());
    const script = `
      import { startEmbeddedPostgres } from ${JSON.stringify(launcher)};
      const server = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)} });
      console.log(server.pid);
      setInterval(() => {}, 60_000);
    `;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const pid = Number(await firstLine(parent.stdout));
    postmasterPids.push(pid);
    expect(isProcessAlive(pid)).toBe(true);

    parent.kill('SIGKILL');
    await expect.poll(() => isProcessAlive(pid), { timeout: 10_000, interval: 50 }).toBe(false);

    const server = await start({ dataDir });
    expect(await query(server.connectionString, 'select 1 as one')).toEqual([{ one: 1 }]);
  });

  it('rejects bad options with exact messages', async () => {
    await expect(startEmbeddedPostgres({ dataDir: '' })).rejects.toThrow('dataDir must be a non-empty string');
    await expect(startEmbeddedPostgres({ dataDir: 'x', port: 0 })).rejects.toThrow(
      'port must be an integer from 1 to 65535',
    );
    await expect(startEmbeddedPostgres({ dataDir: 'x', settings: { port: '1' } })).rejects.toThrow(
      'settings: "port" is set by the launcher',
    );
    await expect(startEmbeddedPostgres({ dataDir: 'x', settings: { 'a b': '1' } })).rejects.toThrow(
      'settings: "a b" is not a PostgreSQL setting name',
    );
  });
});

describe('state file', () => {
  it('writes, reads and removes the state', async () => {
    const file = path.join(await tempDir(), 'nested', 'state.json');
    expect(await readStateFile(file)).toBeNull();
    const state = {
      version: 1 as const,
      connectionString: 'postgres://postgres@localhost:5432/postgres?host=%2Ftmp',
      dataDir: '/tmp/pgdata',
      postgresPid: 123,
      supervisorPid: process.pid,
      startedAt: new Date().toISOString(),
    };
    await writeStateFile(file, state);
    expect(await readStateFile(file)).toEqual(state);
    expect(await readdir(path.dirname(file))).toEqual(['state.json']);
    await removeStateFile(file);
    expect(await readStateFile(file)).toBeNull();
  });

  it('rejects a file that is not a state file', async () => {
    const file = path.join(await tempDir(), 'state.json');
    await writeFile(file, '{"version":2}');
    await expect(readStateFile(file)).rejects.toThrow(`state file ${file} is not a prefork version 1 state file`);
  });

  it('tells live processes from dead ones', () => {
    expect(isProcessAlive(process.pid)).toBe(true);
    expect(isProcessAlive(spawnSync('true').pid ?? 0)).toBe(false);
    expect(isProcessAlive(-1)).toBe(false);
  });
});

/**
 * Transpiles src/embedded to plain ESM in `dir` so that a separate node process can run it; node_modules is
 * linked in so that its imports resolve. Returns the launcher's path.
 */
async function transpileLauncher(dir: string): Promise<string> {
  const source = path.join(repoRoot, 'src', 'embedded');
  const target = path.join(dir, 'embedded');
  await mkdir(target);
  await writeFile(path.join(dir, 'package.json'), '{"type":"module"}');
  await symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  const files = (await readdir(source)).filter((f) => f.endsWith('.ts')).map((f) => [path.join(source, f), path.join(target, f)]);
  // Shared modules the launcher imports from src/.
  files.push([path.join(repoRoot, 'src', 'process-alive.ts'), path.join(dir, 'process-alive.ts')]);
  for (const [from, to] of files) {
    const { outputText } = ts.transpileModule(await readFile(from!, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    await writeFile(to!.replace(/\.ts$/, '.js'), outputText);
  }
  return path.join(target, 'postgres.js');
}

function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')));
    });
    stream.on('end', () => reject(new Error(`no line on stdout (got ${JSON.stringify(text)})`)));
  });
}

/** Ports from 32768 up collide with outgoing connections here, so pick one below and check it is free. */
async function freePortBelowEphemeralRange(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const free = await new Promise<boolean>((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free TCP port found below 30000');
}

describe('supervisor lock', () => {
  it('one of many starts taking over a stale lock at once gets it', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'supervisor.lock');
    const lockModule = path.join(repoRoot, 'dist', 'embedded', 'supervisor-lock.js');
    // Each contender waits for the same moment, tries, holds what it got for a while, then says what it got.
    const script = `
      import { acquireSupervisorLock } from ${JSON.stringify(lockModule)};
      const at = Number(process.argv[1]);
      while (Date.now() < at);
      try {
        const lock = await acquireSupervisorLock(${JSON.stringify(file)}, '/data');
        await new Promise((r) => setTimeout(r, 400));
        await lock.release();
        console.log('acquired');
      } catch (error) {
        console.log(error.name === 'LockHeldError' ? 'held' : 'error: ' + error.message);
      }`;
    for (let round = 0; round < 5; round++) {
      // Left by a supervisor that is gone.
      await writeFile(file, `${JSON.stringify({ pid: spawnSync('true').pid, dataDir: '/data', since: new Date().toISOString() })}\n`);
      const at = Date.now() + 400;
      const outcomes = await Promise.all(
        Array.from({ length: 4 }, () => new Promise<string>((resolve) => {
          const child = spawn(process.execPath, ['--input-type=module', '-e', script, String(at)], { stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
          child.once('exit', () => resolve(out.trim()));
        })),
      );
      expect(outcomes.sort(), `round ${round}`).toEqual(['acquired', 'held', 'held', 'held']);
    }
  });
});
