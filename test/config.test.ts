/** Configuration: flags, PREFORK_* variables and prefork.config.json, in that order; `prefork config` shows the result. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { query, useTestSchema } from './support/database.js';
import { fixture, runCli, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'prefork-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Entry {
  flag: string;
  value: unknown;
  source: string;
  from?: string;
  env: string[];
}

async function effective(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ configFile: string | null; options: Record<string, Entry> }> {
  const r = await runCli(['config', '--json', ...args], { cwd: dir, env });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { configFile: string | null; options: Record<string, Entry> };
}

const writeConfig = (values: unknown, name = 'prefork.config.json') => writeFile(path.join(dir, name), JSON.stringify(values));

describe('configuration', () => {
  it('takes a flag over the environment over the config file over the default', async () => {
    await writeConfig({ workers: 3, concurrency: 4, logLevel: 'debug', maxDbConnections: 20, tasks: 'tasks.js', queues: ['a', 'b'], pretty: false });
    const { configFile, options } = await effective(['--log-level', 'error'], { PREFORK_CONCURRENCY: '5', PREFORK_LOG_LEVEL: 'warn', PREFORK_WORKERS: '' });
    expect(configFile).toBe(path.join(dir, 'prefork.config.json'));
    expect(options.workers).toMatchObject({ value: 3, source: 'config file', from: 'prefork.config.json' });
    expect(options.concurrency).toMatchObject({ value: 5, source: 'env', from: 'PREFORK_CONCURRENCY' });
    expect(options.logLevel).toEqual({ flag: '--log-level', value: 'error', source: 'flag', env: ['PREFORK_LOG_LEVEL'] });
    expect(options.maxDbConnections).toMatchObject({ value: 20, source: 'config file', env: ['PREFORK_MAX_DB_CONNECTIONS'] });
    expect(options.lease).toMatchObject({ value: 15_000, source: 'default' });
    expect(options.queues).toMatchObject({ value: ['a', 'b'], source: 'config file' });
    expect(options.pretty).toMatchObject({ value: false, source: 'config file' });
    // A relative path in the file is relative to the file.
    expect(options.tasks).toMatchObject({ value: path.join(dir, 'tasks.js'), source: 'config file' });

    // --config names another file (so does PREFORK_CONFIG); the default one is then not read.
    await writeConfig({ workers: 7 }, 'other.json');
    expect((await effective(['--config', 'other.json'])).options.workers).toMatchObject({ value: 7, from: 'other.json' });
    expect((await effective([], { PREFORK_CONFIG: 'other.json' })).options.concurrency).toMatchObject({ value: 1, source: 'default' });
    // Booleans from the environment: PREFORK_PRETTY=false is --no-pretty; a flag still wins.
    expect((await effective([], { PREFORK_PRETTY: 'true' })).options.pretty).toMatchObject({ value: true, source: 'env' });
    expect((await effective(['--no-pretty'], { PREFORK_PRETTY: 'yes' })).options.pretty).toMatchObject({ value: false, source: 'flag' });
  });

  it('reads the database URL from PREFORK_DATABASE_URL before DATABASE_URL, and shows it without the password', async () => {
    await writeConfig({ databaseUrl: 'postgres://file:filepw@filehost/db' });
    const url = (env: NodeJS.ProcessEnv) => effective([], env).then((r) => r.options.databaseUrl);
    expect(await url({ DATABASE_URL: undefined })).toMatchObject({ value: 'postgres://file:***@filehost/db', source: 'config file' });
    expect(await url({ DATABASE_URL: 'postgres://env:envpw@envhost/db' })).toMatchObject({ value: 'postgres://env:***@envhost/db', source: 'env', from: 'DATABASE_URL' });
    expect(await url({ DATABASE_URL: 'postgres://env:envpw@envhost/db', PREFORK_DATABASE_URL: 'postgres://p:ppw@phost/db' })).toMatchObject({
      value: 'postgres://p:***@phost/db',
      from: 'PREFORK_DATABASE_URL',
    });
    const text = await runCli(['config', '--database-url', 'postgres://flag:flagpw@flaghost/db'], { cwd: dir });
    expect(text.code).toBe(0);
    expect(text.stdout).not.toMatch(/filepw|flagpw/);
    expect(text.stdout).toMatch(/^ {2}--database-url +postgres:\/\/flag:\*\*\*@flaghost\/db +flag$/m);
  });

  it('prints the effective configuration as a table with where each value came from', async () => {
    await writeConfig({ workers: 3 });
    const r = await runCli(['config'], { cwd: dir, env: { PREFORK_CONCURRENCY: '2', DATABASE_URL: undefined } });
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout.split('\n');
    expect(out[0]).toBe('configuration of prefork start (config file: prefork.config.json)');
    expect(out).toContainEqual(expect.stringMatching(/^ {2}--workers +3 +config file prefork\.config\.json$/));
    expect(out).toContainEqual(expect.stringMatching(/^ {2}--concurrency +2 +env PREFORK_CONCURRENCY$/));
    expect(out).toContainEqual(expect.stringMatching(/^ {2}--lease +15000 +default$/));
    expect(out).toContainEqual(expect.stringMatching(/^ {2}--database-url +\(none: the embedded PostgreSQL\) +default$/));
  });

  it('rejects a bad value from the environment or the file with the flag\'s own message, exit 2', async () => {
    const bad = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
      const r = await runCli(args, { cwd: dir, env });
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      return r.stderr;
    };
    expect(await bad(['start'], { PREFORK_WORKERS: 'abc' })).toBe('prefork: error: PREFORK_WORKERS=abc: --workers must be a whole number from 1 to 1024\n');
    expect(await bad(['config'], { PREFORK_LOG_LEVEL: 'loud' })).toBe(
      'prefork: error: PREFORK_LOG_LEVEL=loud: --log-level must be one of fatal, error, warn, info, debug, trace, silent\n',
    );
    expect(await bad(['start'], { PREFORK_PRETTY: 'maybe' })).toBe('prefork: error: PREFORK_PRETTY=maybe: --pretty must be true or false (or 1/0, yes/no, on/off)\n');
    expect(await bad(['start'], { PREFORK_NO_LOCAL_SOCKET: 'maybe' })).toBe(
      'prefork: error: PREFORK_NO_LOCAL_SOCKET=maybe: --no-local-socket must be true or false (or 1/0, yes/no, on/off)\n',
    );
    await writeConfig({ workers: 0 });
    expect(await bad(['start'])).toBe('prefork: error: prefork.config.json: workers=0: --workers must be a whole number from 1 to 1024\n');
    // Wrong types are slips, not values: a path of 123, queues of numbers, null for the default.
    await writeConfig({ tasks: 123 });
    expect(await bad(['config'])).toBe('prefork: error: prefork.config.json: tasks=123: --tasks takes a value (a string), not 123\n');
    await writeConfig({ queues: [1, 2] });
    expect(await bad(['config'])).toBe('prefork: error: prefork.config.json: queues=[1,2]: --queues takes a value (a string or a number), not [1,2]\n');
    await writeConfig({ workers: null });
    expect(await bad(['config'])).toBe('prefork: error: prefork.config.json: workers is null: give a value, or leave the key out for the default\n');
    // A bad flag fails as it always did, before the environment and the file are looked at.
    expect(await bad(['start', '--workers', 'x'])).toContain("option '-w, --workers <n>' argument 'x' is invalid");
    await writeFile(path.join(dir, 'prefork.config.json'), '{"workers": ');
    expect(await bad(['config'])).toMatch(/^prefork: error: prefork\.config\.json: not valid JSON \(.+\)\n$/);
    expect(await bad(['config', '--config', 'missing.json'])).toBe('prefork: error: --config missing.json: cannot read the config file: no such file\n');
  });

  it('refuses a database URL that is not a PostgreSQL URL in one line, exit 2, the password hidden', async () => {
    const bad = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
      const r = await runCli(args, { cwd: dir, env });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      return r.stderr;
    };
    const invalid = 'it is not a valid URL (check the port, and percent-encode special characters in the user and password)';
    expect(await bad(['send', 'prefork.echo', '--database-url', 'postgres://app:s3cret@db:notaport/app'])).toBe(
      `prefork: error: --database-url postgres://app:***@db:notaport/app: ${invalid}\n`,
    );
    expect(await bad(['status'], { DATABASE_URL: 'postgres://app:s3cret@db:99999/app' })).toBe(`prefork: error: DATABASE_URL postgres://app:***@db:99999/app: ${invalid}\n`);
    expect(await bad(['start', '--database-url', 'mysql://root@127.0.0.1/test'])).toBe(
      'prefork: error: --database-url mysql://root@127.0.0.1/test: "mysql://" is not a PostgreSQL URL (postgres://user@host:5432/db)\n',
    );
    expect(await bad(['send', '', '{}'])).toBe('prefork: error: the task name must be a string of 1 to 200 characters (got 0 characters)\n');
    // What pg would take for a host named "base": a libpq keyword string, a URL missing "://"; the password hidden.
    expect(await bad(['status', '--database-url', 'host=127.0.0.1 user=postgres password=s3cret'])).toBe(
      'prefork: error: --database-url host=127.0.0.1 user=postgres password=***: it is not a PostgreSQL URL (postgres://user@host:5432/db)\n',
    );
    expect(await bad(['status'], { DATABASE_URL: 'postgres//postgres@127.0.0.1/test' })).toBe(
      'prefork: error: DATABASE_URL postgres//postgres@127.0.0.1/test: it is not a PostgreSQL URL (postgres://user@host:5432/db)\n',
    );
    // Given empty: a slip (an unset shell variable), not a request for the default.
    expect(await bad(['status', '--database-url', ''])).toBe('prefork: error: --database-url must not be empty\n');
    expect(await bad(['status', '--schema', ''])).toBe('prefork: error: --schema must not be empty\n');
    expect(await bad(['start', '--tasks', ''])).toBe('prefork: error: --tasks must not be empty\n');
    expect(await bad(['start', '--metrics-port', '9191', '--metrics-host', ''])).toBe('prefork: error: --metrics-host must not be empty\n');
    expect(await bad(['status', '--config', ''])).toBe('prefork: error: --config must not be empty\n');
    // What pg would throw on with a stack trace: a stray "%" (URIError), an SSL file it cannot read (it reads them as it parses).
    expect(await bad(['status', '--database-url', 'postgres://app:s%ecret@127.0.0.1:5999/app'])).toBe(
      'prefork: error: --database-url postgres://app:***@127.0.0.1:5999/app: its user, password or database name has a "%" that does not start a percent-encoded character (write "%" as %25)\n',
    );
    // pg takes a "%" before non-hex characters as it is (it re-encodes it): accepted, as pg accepts it.
    // (Nothing listens on port 5999: the URL is taken, and the database is then not reached, exit 3.)
    const accepted = await runCli(['status', '--database-url', 'postgres://app:p%ssword@127.0.0.1:5999/app'], { cwd: dir });
    expect(accepted.code, accepted.stderr).toBe(3);
    expect(accepted.stderr).not.toContain('p%ssword');
    expect(await bad(['send', 'prefork.echo'], { DATABASE_URL: 'postgres://app:s3cret@127.0.0.1:5999/app?sslcert=/nonexistent/cert.pem' })).toBe(
      'prefork: error: DATABASE_URL postgres://app:***@127.0.0.1:5999/app?sslcert=/nonexistent/cert.pem: its sslcert file /nonexistent/cert.pem cannot be read (ENOENT)\n',
    );
    // Schemas shared with the application or the server: prefork's plain table names would meet theirs.
    for (const schema of ['public', 'pg_catalog', 'information_schema']) {
      expect(await bad(['status', '--schema', schema])).toBe(`prefork: error: schema "${schema}" is not for prefork: give its queue a schema of its own (default prefork)\n`);
    }
  });

  it('reads an only-negative flag from PREFORK_NO_<FLAG> with the flag\'s meaning (and from the setting\'s name, and 0/1 in the file)', async () => {
    const config = async (env: NodeJS.ProcessEnv) => {
      const r = await runCli(['config', '--json'], { cwd: dir, env });
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { options: Record<string, { value: unknown; source: string; from?: string }> }).options.localSocket;
    };
    expect(await config({})).toMatchObject({ value: true, source: 'default' });
    expect(await config({ PREFORK_NO_LOCAL_SOCKET: '1' })).toMatchObject({ value: false, source: 'env', from: 'PREFORK_NO_LOCAL_SOCKET' });
    expect(await config({ PREFORK_NO_LOCAL_SOCKET: 'false' })).toMatchObject({ value: true, source: 'env', from: 'PREFORK_NO_LOCAL_SOCKET' });
    expect(await config({ PREFORK_LOCAL_SOCKET: '0' })).toMatchObject({ value: false, source: 'env', from: 'PREFORK_LOCAL_SOCKET' });
    await writeConfig({ localSocket: 0 });
    expect(await config({})).toMatchObject({ value: false, source: 'config file' });
    // The table shows the flag's own value: --no-local-socket true when the socket is not used.
    expect((await runCli(['config'], { cwd: dir })).stdout).toMatch(/\n {2}--no-local-socket +true +config file prefork\.config\.json\n/);
  });

  it('answers command line slips in one line with exit 2', async () => {
    const usage = async (args: string[]) => {
      const r = await runCli(args, { cwd: dir });
      expect(r.code, r.stderr).toBe(2);
      return r.stderr;
    };
    expect(await usage(['sned', 'x'])).toBe("prefork: error: unknown command 'sned' (Did you mean send?)\n");
    expect(await usage(['send', 'x', '--wiat'])).toBe("prefork: error: unknown option '--wiat' (Did you mean --wait?)\n");
    expect(await usage(['send', 'prefork.echo', '{}', '--timeout', '100'])).toBe('prefork: error: --timeout is for --wait\n');
    // No command at all: the help, as a usage error; asked for, it is no error.
    expect(await usage([])).toContain('Usage: prefork [options] [command]');
    expect((await runCli(['help', 'send'], { cwd: dir })).code).toBe(0);
    expect(await usage(['help', 'sned'])).toBe("prefork: error: unknown command 'sned' (prefork --help lists them)\n");
  });

  it('lets a database URL win over a data dir from the environment or the file, but not over --data-dir', async () => {
    const env = { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' };
    await writeConfig({ dataDir: 'db/pg' });
    for (const extra of [{}, { PREFORK_DATA_DIR: 'other/pg' }]) {
      const r = await runCli(['status'], { cwd: dir, env: { ...env, ...extra } });
      expect(r.code, r.stderr).toBe(3); // the URL was used: unreachable
    }
    const flag = await runCli(['status', '--data-dir', 'x/pg'], { cwd: dir, env: { PREFORK_DATABASE_URL: env.DATABASE_URL } });
    expect(flag).toMatchObject({ code: 2, stderr: 'prefork: error: --data-dir is for the embedded PostgreSQL, which is not used when PREFORK_DATABASE_URL is given\n' });
  });

  it('rejects unknown config keys in one line listing the valid ones, for every command that reads the file', async () => {
    await writeConfig({ workers: 2, wrokers: 3 });
    for (const command of [['start'], ['config'], ['status']]) {
      const r = await runCli(command, { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr.split('\n')).toHaveLength(2);
      expect(r.stderr).toMatch(/^prefork: error: prefork\.config\.json: unknown key "wrokers"; valid keys: concurrency, .*\bmaxDbConnections\b.*\bworkers\n$/);
    }
  });

  it('starts a supervisor configured from the environment and the file; other commands read the database options from the file', async () => {
    const schema = schemaName();
    await writeConfig({ schema, concurrency: 2, workers: 4, tasks: fixture('tasks.js') });
    const sup = SupervisorProcess.start(schema, [], { PREFORK_WORKERS: '1' }, { cwd: dir });
    await sup.ready();
    expect(sup.events('supervisor_starting')[0]).toMatchObject({ workers: 1, concurrency: 2, schema });
    expect(sup.workerPids()).toHaveLength(1);
    // `send` takes the schema from the file, but not start's PREFORK_MAX_ATTEMPTS: that configures the supervisor.
    const r = await runCli(['send', 'fixture.backendPid', '{}', '--wait'], { cwd: dir, env: { PREFORK_SCHEMA: undefined, PREFORK_MAX_ATTEMPTS: '7' } });
    expect(r.code, r.stderr).toBe(0);
    expect((await query<{ max_attempts: number | null }>(`select max_attempts from "${schema}".tasks`))[0]!.max_attempts).toBeNull();
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
  });
});
