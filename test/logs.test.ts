/** Log format: JSON lines by default, pretty lines on a terminal or with --pretty, for the primary and its workers. */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { formatPrettyLine } from '../src/pretty-log.js';
import { databaseUrl, useTestSchema } from './support/database.js';
import { binPath, runCli, startWithFixtures, SupervisorProcess, useProcessLeakGuard } from './support/processes.js';

const schemaName = useTestSchema();
useProcessLeakGuard();

const isJson = (line: string) => {
  try {
    return typeof JSON.parse(line) === 'object';
  } catch {
    return false;
  }
};
const lines = (text: string) => text.split(/\r?\n/).filter((l) => l.trim() !== '');

/** `prefork start` with stdout on a pseudo-terminal (util-linux `script`); stopped through `prefork stop`. */
async function startInTerminal(schema: string, args: string[]): Promise<string> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = ['exec', process.execPath, binPath, 'start', ...args].map(quote).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, PREFORK_SCHEMA: schema, NO_COLOR: '', FORCE_COLOR: undefined } as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    await expect.poll(() => out, { timeout: 30_000 }).toContain('supervisor_ready');
    expect((await runCli(['stop'], { schema })).code).toBe(0);
    expect(await exited).toBe(0);
    return out;
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

describe('log format', () => {
  it('is JSON lines by default when stdout is not a terminal, with pid on every line, and no password', async () => {
    const schema = schemaName();
    const url = new URL(databaseUrl());
    if (!url.password) url.password = 'pw-not-needed-with-trust';
    const sup = startWithFixtures(schema, ['--workers', '2'], { DATABASE_URL: url.toString() });
    await sup.ready();
    expect((await runCli(['send', 'fixture.fail', '--wait'], { schema, env: { DATABASE_URL: url.toString() } })).code).toBe(1);
    await sup.waitForEvent('task_failed');
    expect(await sup.stop()).toEqual({ code: 0, signal: null });
    const out = lines(sup.stdout());
    expect(out.filter((l) => !isJson(l))).toEqual([]);
    expect(sup.logs.every((l) => typeof l.pid === 'number')).toBe(true);
    expect(new Set(sup.events('worker_process_init').map((l) => l.pid))).toEqual(new Set(sup.workerPids()));
    // Lines about a task name the task, its attempt and the worker process.
    expect(sup.events('task_failed')[0]).toMatchObject({ task: 'fixture.fail', attempt: 1, workerPid: expect.any(Number), taskId: expect.any(String) });
    expect(sup.stdout()).not.toContain(decodeURIComponent(url.password));
    expect(sup.events('database_selected')[0]!.database).toContain(':***@');
  });

  it('is pretty with --pretty: not JSON, with the event names, from the primary and the workers', async () => {
    const schema = schemaName();
    const sup = SupervisorProcess.start(schema, ['--workers', '2', '--pretty']);
    await expect.poll(() => sup.stdout()).toContain('supervisor_ready');
    expect(sup.stdout()).not.toContain('\x1b['); // colours only on a terminal
    expect((await runCli(['stop'], { schema })).code).toBe(0);
    expect(await sup.exited).toEqual({ code: 0, signal: null });
    const out = lines(sup.stdout());
    expect(out.filter(isJson)).toEqual([]);
    const workerInits = out.filter((l) => / INFO {2}worker \d+ worker_process_init /.test(l));
    expect(workerInits).toHaveLength(2);
    for (const event of ['worker_forked', 'worker_ready', 'supervisor_ready', 'supervisor_stopped']) {
      expect(out.some((l) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO {2}primary ${sup.pid} ${event} `).test(l)), event).toBe(true);
    }
    expect(out.find((l) => l.includes('worker_forked'))).toMatch(/workerId=1 workerPid=\d+/);
  });

  it('is pretty and coloured on a terminal by default, and JSON there with --no-pretty', async () => {
    const pretty = lines(await startInTerminal(schemaName(), ['--workers', '1']));
    expect(pretty.filter(isJson)).toEqual([]);
    expect(pretty.find((l) => l.includes('supervisor_ready'))).toContain('\x1b[32mINFO \x1b[0m');
    expect(pretty.some((l) => l.includes('worker_process_init'))).toBe(true);

    const json = lines(await startInTerminal(schemaName(), ['--workers', '1', '--no-pretty']));
    expect(json.length).toBeGreaterThan(5);
    expect(json.filter((l) => !isJson(l))).toEqual([]);
    expect(json.some((l) => JSON.parse(l).event === 'worker_process_init')).toBe(true);
  });

  it('formats a line: time, level, role and pid, event, message, fields, and an error with its stack', () => {
    const line = JSON.stringify({
      level: 'error',
      time: '2025-01-02T03:04:05.678Z',
      pid: 42,
      role: 'worker',
      supervisorId: 'hidden',
      event: 'task_failed',
      msg: 'it broke',
      taskId: '7',
      note: 'two words',
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x (y.js:1:1)' },
    });
    expect(formatPrettyLine(line, false)).toBe(
      '03:04:05.678 ERROR worker 42 task_failed  it broke  taskId=7 note="two words" err="Error: boom"\n    Error: boom\n        at x (y.js:1:1)\n',
    );
    expect(formatPrettyLine(line, true)).toContain('\x1b[31mERROR\x1b[0m');
    expect(formatPrettyLine('not json', false)).toBe('not json\n');
  });
});
