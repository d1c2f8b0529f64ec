/**
 * Real subprocesses: the built CLI, started as a user would start it. A leak guard fails any test that
 * leaves one running (and kills it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, onTestFailed } from 'vitest';
import { isProcessAlive } from '../../src/process-alive.js';

export const binPath = fileURLToPath(new URL('../../bin/prefork.js', import.meta.url));
export const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

export interface LogLine {
  level: string;
  event?: string;
  pid: number;
  msg: string;
  [key: string]: unknown;
}

const live = new Set<ChildProcess>();

/** Whether the process runs (a zombie awaiting its reaper counts as gone). */
export const isAlive = isProcessAlive;

/** The pids of a process's children (Linux: the children file of each of its threads in /proc). */
export function childPids(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
    readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8')
      .split(' ')
      .filter((x) => x !== '')
      .map(Number),
  );
}

export class SupervisorProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #listeners = new Set<() => void>();
  #rawStdout = '';

  #printTail(lines = 60): void {
    const tail = this.logs.slice(-lines).map((l) => {
      const { level, time, event, msg, pid: _pid, hostname: _h, supervisorId: _s, role, ...rest } = l;
      const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
      return `${String(time)} ${level} ${String(role ?? '')} ${event ?? ''} ${msg} ${fields}`.slice(0, 400);
    });
    const stderr = this.stderr.trim().split('\n').slice(-20).join('\n');
    console.error(`--- prefork start (pid ${this.child.pid}): last ${tail.length} of ${this.logs.length} log lines\n${tail.join('\n')}${stderr ? `\n--- its stderr (tail)\n${stderr}` : ''}`);
  }

  /** Everything the process wrote to stdout so far. */
  stdout(): string {
    return this.#rawStdout;
  }

  constructor(readonly child: ChildProcess) {
    live.add(child);
    // When the test fails, what the supervisor last said goes to the test's output: a failure in CI can be
    // read from its log alone.
    try {
      onTestFailed(() => this.#printTail());
    } catch {
      // started outside a test (a hook): no test to report on
    }
    let buffered = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.#rawStdout += chunk;
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.stderr += `${line}\n`;
        }
      }
      for (const l of this.#listeners) l();
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        for (const l of this.#listeners) l();
        resolve({ code, signal });
      });
    });
  }

  /**
   * Starts `prefork start` with the given flags against the test database and schema. `env` values that are
   * undefined are removed; `detached` gives it a process group of its own (as a shell gives a foreground job).
   */
  static start(schema: string, args: string[] = [], env: NodeJS.ProcessEnv = {}, options: { cwd?: string; detached?: boolean } = {}): SupervisorProcess {
    const child = spawn(process.execPath, [binPath, 'start', ...args], {
      env: withoutUndefined({ ...process.env, PREFORK_SCHEMA: schema, ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: options.cwd,
      detached: options.detached,
    });
    return new SupervisorProcess(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  events(event: string): LogLine[] {
    return this.logs.filter((l) => l.event === event);
  }

  /** Every worker pid this supervisor ever forked. */
  workerPids(): number[] {
    return this.events('worker_forked').map((l) => l.workerPid as number);
  }

  /** Resolves with the first log line matching, failing fast if the process exits first. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.logs.find(predicate);
        if (hit) return done(() => resolve(hit));
        if (!this.running) return done(() => reject(new Error(`supervisor exited before the expected log line; stderr: ${this.stderr}\nlast logs: ${this.tail()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`timed out waiting for a log line; stderr: ${this.stderr}\nlast logs: ${this.tail()}`))), timeoutMs);
      const done = (then: () => void) => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        then();
      };
      this.#listeners.add(check);
      check();
    });
  }

  waitForEvent(event: string, count = 1, timeoutMs = 20_000): Promise<LogLine> {
    return this.waitForLog(() => this.events(event).length >= count, timeoutMs);
  }

  ready(timeoutMs = 20_000): Promise<LogLine> {
    return this.waitForEvent('supervisor_ready', 1, timeoutMs);
  }

  tail(n = 8): string {
    return this.logs
      .slice(-n)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.child.kill(signal);
  }

  /** Graceful stop by signal; resolves with the exit status. */
  async stop(timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one CLI command to completion. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; schema?: string; cwd?: string } = {}): Promise<CliResult> {
  const env = withoutUndefined({ ...process.env, ...(options.schema ? { PREFORK_SCHEMA: options.schema } : {}), ...options.env });
  const child = spawn(process.execPath, [binPath, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'], cwd: options.cwd });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  child.stdin.end(options.input ?? '');
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      live.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

function withoutUndefined(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

/** `prefork start --tasks test/fixtures/tasks.js` with more flags (and environment), on `schema`. */
export function startWithFixtures(schema: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): SupervisorProcess {
  return SupervisorProcess.start(schema, ['--tasks', fixture('tasks.js'), ...args], env);
}

/** Leak guard: a test that leaves a prefork process running fails, and the process is killed. */
export function useProcessLeakGuard(): void {
  afterEach(async () => {
    const leaked = [...live].filter((c) => c.exitCode === null && c.signalCode === null);
    for (const c of leaked) c.kill('SIGKILL');
    live.clear();
    expect(leaked.map((c) => c.pid), 'prefork processes left running by the test').toEqual([]);
  });
}
