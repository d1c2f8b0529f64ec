/** The package's two entry points: `prefork`, and `prefork/task` for task modules (the worker-side API only). */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const rootUrl = new URL('..', import.meta.url);
const root = fileURLToPath(rootUrl);
const recorder = fileURLToPath(new URL('./fixtures/record-imports.mjs', import.meta.url));

/** The URL of every module a fresh process loads through the ESM loader while it runs `script` (an ES module). */
async function modulesLoadedBy(script: string): Promise<string[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'prefork-imports-'));
  try {
    const file = path.join(dir, 'loaded.txt');
    await promisify(execFile)(process.execPath, ['--import', recorder, '--input-type=module', '-e', script], {
      cwd: root,
      env: { ...process.env, RECORD_IMPORTS_TO: file },
    });
    return (await readFile(file, 'utf8')).split('\n').filter(Boolean);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The files of prefork's dist/ a fresh process loads for `import(specifier)`, relative to dist/. */
async function distModulesLoadedBy(specifier: string): Promise<string[]> {
  const dist = new URL('dist/', rootUrl).href;
  return (await modulesLoadedBy(`await import(${JSON.stringify(specifier)})`)).filter((u) => u.startsWith(dist)).map((u) => u.slice(dist.length));
}

it('prefork/task exports the worker-side API, the same objects as prefork, and nothing of the supervisor or client', async () => {
  const full = await import('prefork');
  const task = await import('prefork/task');
  const primaryOnly = ['Client', 'Supervisor', 'supervisorDefaults'];
  expect(Object.keys(task).sort()).toEqual(Object.keys(full).filter((k) => !primaryOnly.includes(k)).sort());
  for (const [name, value] of Object.entries(task)) expect(full[name as keyof typeof full], name).toBe(value);
});

it('a process that imports prefork/task loads neither the supervisor nor the client', async () => {
  const viaTask = await distModulesLoadedBy('prefork/task');
  expect(viaTask).toContain('task.js');
  expect(viaTask.filter((f) => f.startsWith('primary/') || f.startsWith('client/') || f.startsWith('metrics/'))).toEqual([]);
  // The recorder sees them when they are loaded: the full entry does load them.
  const viaFull = await distModulesLoadedBy('prefork');
  expect(viaFull).toEqual(expect.arrayContaining(['primary/supervisor.js', 'client/client.js']));
});

it("a worker loads only the kysely modules prefork uses, not kysely's index; they are the objects the index exports", async () => {
  const moduleUrl = new URL('dist/db/kysely-module.js', rootUrl).href;
  const kyselyEsm = new URL('node_modules/kysely/dist/esm/', rootUrl).href;
  const loaded = (await modulesLoadedBy(`const { loadKysely } = await import(${JSON.stringify(moduleUrl)}); await loadKysely();`))
    .filter((u) => u.startsWith(kyselyEsm))
    .map((u) => u.slice(kyselyEsm.length));
  expect(loaded).toEqual(expect.arrayContaining(['kysely.js', 'dialect/postgres/postgres-dialect.js', 'raw-builder/sql.js']));
  expect(loaded).not.toContain('index.js');
  // Without the index, kysely's other dialects (mysql, mssql, sqlite) are never loaded.
  expect(loaded.filter((f) => /^dialect\/(mysql|mssql|sqlite)\//.test(f))).toEqual([]);

  // The same objects a task module gets from `import 'kysely'`: one kysely in the process.
  const script = `
    const { loadKyselyParts } = await import(${JSON.stringify(moduleUrl)});
    const parts = await loadKyselyParts();
    const index = await import('kysely');
    console.log(JSON.stringify(Object.keys(parts).map((name) => [name, parts[name] === index[name]])));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
  expect(Object.fromEntries(JSON.parse(stdout) as [string, boolean][])).toEqual({
    Kysely: true, PostgresDialect: true, sql: true, CompiledQuery: true, isAbortedTransactionError: true,
  });
});
