/** The package's two entry points: `prefork`, and `prefork/task` for task modules (the worker-side API only). */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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

it("a worker loads kysely as one file, built from the installed kysely's version: none of kysely's own modules", async () => {
  const moduleUrl = new URL('dist/db/kysely-module.js', rootUrl).href;
  const kyselyPackage = new URL('node_modules/kysely/', rootUrl).href;
  const installed = (JSON.parse(await readFile(new URL('node_modules/kysely/package.json', rootUrl), 'utf8')) as { version: string }).version;
  const script = `
    const { loadKysely } = await import(${JSON.stringify(moduleUrl)});
    const k = await loadKysely();
    console.log(JSON.stringify({ version: k.kyselyVersion, compiled: k.sql\`select \${1} as one\`.compile(new k.Kysely({ dialect: new k.PostgresDialect({ pool: {} }) })).sql }));`;
  const loaded = await modulesLoadedBy(script);
  expect(loaded).toContain(new URL('dist/db/kysely-bundle.js', rootUrl).href);
  expect(loaded.filter((u) => u.startsWith(kyselyPackage))).toEqual([]);
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
  expect(JSON.parse(stdout)).toEqual({ version: installed, compiled: 'select $1 as one' });
});

it("beside another kysely version than the one file was built from, or without it, a worker loads the files that define what prefork uses, not kysely's index; they are the objects the index exports", async () => {
  // kysely-module.js beside a stand-in for the one file, in a directory whose node_modules is the repository's.
  const dir = await mkdtemp(path.join(root, '.kysely-module-'));
  try {
    await copyFile(new URL('dist/db/kysely-module.js', rootUrl), path.join(dir, 'kysely-module.js'));
    const installed = (JSON.parse(await readFile(new URL('node_modules/kysely/package.json', rootUrl), 'utf8')) as { version: string }).version;
    const from = async (bundleVersion: string | null) => {
      await rm(path.join(dir, 'kysely-bundle.js'), { force: true });
      if (bundleVersion !== null) {
        await writeFile(path.join(dir, 'kysely-bundle.js'), `export const Kysely = 'the one file'; export const kyselyVersion = ${JSON.stringify(bundleVersion)};\n`);
      }
      const script = `
        const { loadKysely } = await import(${JSON.stringify(pathToFileURL(path.join(dir, 'kysely-module.js')).href)});
        const parts = await loadKysely();
        const index = await import('kysely');
        console.log(JSON.stringify(Object.keys(parts).filter((k) => k !== 'kyselyVersion').map((name) => [name, parts[name] === index[name] ? 'index' : parts[name]])));`;
      const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
      return Object.fromEntries(JSON.parse(stdout) as [string, string][]);
    };
    const fromParts = { Kysely: 'index', PostgresDialect: 'index', sql: 'index', CompiledQuery: 'index', isAbortedTransactionError: 'index' };
    expect(await from(installed)).toEqual({ Kysely: 'the one file' });
    expect(await from('0.0.1')).toEqual(fromParts);
    expect(await from(null)).toEqual(fromParts);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  // Those files, not the index: kysely's other dialects (mysql, mssql, sqlite) are never loaded.
  const moduleUrl = new URL('dist/db/kysely-module.js', rootUrl).href;
  const kyselyEsm = new URL('node_modules/kysely/dist/esm/', rootUrl).href;
  const loaded = (await modulesLoadedBy(`const { loadKyselyParts } = await import(${JSON.stringify(moduleUrl)}); await loadKyselyParts();`))
    .filter((u) => u.startsWith(kyselyEsm))
    .map((u) => u.slice(kyselyEsm.length));
  expect(loaded).toEqual(expect.arrayContaining(['kysely.js', 'dialect/postgres/postgres-dialect.js', 'raw-builder/sql.js']));
  expect(loaded).not.toContain('index.js');
  expect(loaded.filter((f) => /^dialect\/(mysql|mssql|sqlite)\//.test(f))).toEqual([]);
});
