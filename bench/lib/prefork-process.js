/** `prefork start` as a real subprocess (the built bin), with its JSON log lines parsed. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { databaseUrl, query, quoteIdent } from './db.js';
import { stopTree } from './proc.js';
import { pollUntil } from './wait.js';

export const binPath = fileURLToPath(new URL('../../bin/prefork.js', import.meta.url));
export const tasksPath = fileURLToPath(new URL('../tasks.js', import.meta.url));

export class SupervisorProcess {
  logs = [];
  stderr = '';
  #waiters = new Set();

  constructor(child, schema, logLevel) {
    this.child = child;
    this.schema = schema;
    this.logLevel = logLevel;
    this.spawnedAt = performance.now();
    let buffered = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const parsed = JSON.parse(line);
          parsed.seenAt = performance.now();
          this.logs.push(parsed);
        } catch {
          this.stderr += `${line}\n`;
        }
      }
      for (const w of this.#waiters) w();
    });
    child.stderr.setEncoding('utf8').on('data', (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-20_000);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      for (const w of this.#waiters) w();
      resolve({ code, signal });
    }));
  }

  /** Starts a supervisor with 4 workers on `schema`; `defer` registers its stop. */
  static start(defer, schema, { logLevel = 'warn', workers = 4, extraArgs = [] } = {}) {
    const env = { ...process.env, DATABASE_URL: databaseUrl };
    // e.g. "--cpu-prof --cpu-prof-dir=DIR" (not allowed in NODE_OPTIONS); cluster workers inherit them.
    const nodeArgs = (process.env.BENCH_PRIMARY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    const child = spawn(
      process.execPath,
      [...nodeArgs, binPath, 'start', '--workers', String(workers), '--schema', schema, '--log-level', logLevel, '--tasks', tasksPath, ...extraArgs],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const sup = new SupervisorProcess(child, schema, logLevel);
    defer(`prefork supervisor ${schema}`, () => sup.stop());
    return sup;
  }

  get pid() {
    return this.child.pid;
  }

  get running() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  events(event) {
    return this.logs.filter((l) => l.event === event);
  }

  /** The first log line matching `predicate`; fails fast when the supervisor exits first. */
  waitForLog(predicate, timeoutMs = 30_000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.logs.find(predicate);
        if (hit) return done(() => resolve(hit));
        if (!this.running) return done(() => reject(new Error(`prefork exited before the expected log line: ${this.tail()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`timed out waiting for a prefork log line: ${this.tail()}`))), timeoutMs);
      const done = (then) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        then();
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Resolves with the `count`-th line of `event`. */
  async waitForEvent(event, count = 1, timeoutMs = 30_000) {
    await this.waitForLog(() => this.events(event).length >= count, timeoutMs);
    return this.events(event)[count - 1];
  }

  /**
   * Ready: the `supervisor_ready` line at info level; at quieter levels, the snapshot the supervisor publishes
   * once every worker is ready (its row says `running` from registration on, before any worker exists).
   */
  async ready(timeoutMs = 60_000) {
    if (['info', 'debug', 'trace'].includes(this.logLevel)) return this.waitForEvent('supervisor_ready', 1, timeoutMs);
    await pollUntil(
      async () => {
        if (!this.running) {
          await this.exited;
          throw new Error(`prefork exited before it was ready: ${this.tail().trim()}`);
        }
        try {
          const [r] = await query(
            `select count(*)::int as n from ${quoteIdent(this.schema)}.supervisors where pid = $1 and state = 'running' and snapshot ->> 'state' = 'running'`,
            [this.pid],
          );
          return r.n > 0;
        } catch {
          return false; // not migrated yet
        }
      },
      { timeoutMs, intervalMs: 25, what: `prefork on ${this.schema} to be ready` },
    );
    return null;
  }

  tail(n = 6) {
    return `${this.logs.slice(-n).map((l) => JSON.stringify(l)).join('\n')}\n${this.stderr.slice(-2_000)}`;
  }

  /** Graceful stop (SIGTERM), then SIGKILL for the whole tree if it takes too long. */
  async stop() {
    await stopTree(this.child, { signal: 'SIGTERM', graceMs: 15_000 });
  }
}
