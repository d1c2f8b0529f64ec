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

/** The files of prefork's dist/ a fresh process loads for `import(specifier)`, relative to dist/. */
async function distModulesLoadedBy(specifier: string): Promise<string[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'prefork-imports-'));
  try {
    const file = path.join(dir, 'loaded.txt');
    await promisify(execFile)(process.execPath, ['--import', recorder, '--input-type=module', '-e', `await import(${JSON.stringify(specifier)})`], {
      cwd: root,
      env: { ...process.env, RECORD_IMPORTS_TO: file },
    });
    const dist = new URL('dist/', rootUrl).href;
    return (await readFile(file, 'utf8')).split('\n').filter((u) => u.startsWith(dist)).map((u) => u.slice(dist.length));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
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
