/**
 * Kills the workers a primary leaves behind when it dies without stopping them (SIGKILL, the OOM killer, a
 * crash of Node itself).
 *
 * A worker whose primary is gone exits when its IPC channel closes (node:cluster does so on 'disconnect'),
 * but only once its event loop turns: a task that blocks it (a CPU loop, a synchronous library call) keeps
 * it running, and with its primary gone no hard limit ends it. The guard is a shell of its own, not a
 * worker's thread (a V8 isolate each, ~5 MB a worker) nor a Node.js process (~40 MB): it blocks reading a pipe
 * from the primary, which tells it each worker's pid as it is forked and as it exits. The pipe's end comes
 * when the primary's process ends, however it ends; the workers still listed then are killed. A stop closes
 * it with none listed. It ignores the signals a terminal or a process manager sends the whole group, so that
 * it lives exactly as long as the primary.
 *
 * A pid is killed only if it still names the process forked then: its start time (field 22 of
 * /proc/PID/stat) is given with it and checked, so a pid the system gave to another process meanwhile is
 * left alone. On Linux a worker whose start time cannot be read is not guarded; where there is no /proc
 * (macOS), the pid alone is used.
 *
 * A guard that exits while the primary lives (something killed it) is started again, told every worker listed
 * then: at once the first time, then after a delay doubling from 100 ms to 30 s while it keeps going within a
 * minute of its start. Until it is back, the next supervisor started on the host is the fallback, as it is
 * without /bin/sh (Windows, a distroless image), where there is no guard: that supervisor kills such workers
 * (same-host.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { processStartTime } from '../process-alive.js';

const script = [
  "trap '' HUP INT QUIT TERM PIPE",
  'set -f',
  'list=',
  'while read -r op pid start; do',
  '  case $op in',
  '    +) list="$list $pid:$start" ;;',
  '    -) next=; for e in $list; do [ "$e" = "$pid:$start" ] || next="$next $e"; done; list=$next ;;',
  '  esac',
  'done',
  'for e in $list; do',
  '  pid=${e%%:*}; start=${e#*:}',
  '  case $pid in ""|0*|*[!0-9]*) continue ;; esac',
  '  if [ "$start" != - ]; then',
  '    [ -r "/proc/$pid/stat" ] || continue',
  '    read -r stat < "/proc/$pid/stat" || continue',
  '    set -- ${stat##*) }',
  '    [ "${20}" = "$start" ] || continue',
  '  fi',
  '  kill -9 "$pid" 2>/dev/null',
  'done',
].join('\n');

/** A guard that lived this long before it went is started again at once; a shorter life doubles the delay. */
const stableAfterMs = 60_000;
const firstRestartDelayMs = 100;
const maxRestartDelayMs = 30_000;

export class OrphanGuard {
  /** The running guard; undefined before it starts and while it is restarted; null: /bin/sh could not start. */
  #child: ChildProcess | null | undefined;
  /** Its start is scheduled: once this turn's forks are done (the first), or after a delay (a restart). */
  #starting: NodeJS.Timeout | undefined;
  /** The workers listed, by pid: their start time. What a started guard is told. */
  readonly #guarded = new Map<number, string>();
  #closed = false;
  /** Guards lost in a row, each within a minute of its start. */
  #losses = 0;
  #startedAt = 0;
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** A worker was forked: killed if the primary dies before it exits. */
  add(pid: number | undefined): void {
    // 0 (a fork that failed) would make `kill -9 0` the whole process group's end.
    if (pid === undefined || !Number.isSafeInteger(pid) || pid <= 0) return;
    // On Linux a pid is guarded with its start time or not at all: never by the pid alone. Elsewhere ('-'), by it.
    const start = process.platform === 'linux' ? processStartTime(pid) : '-';
    if (start === undefined) return void this.#log.debug({ event: 'orphan_guard_skipped', workerPid: pid }, 'could not read the worker\'s start time: not guarded');
    this.#guarded.set(pid, start);
    this.#write(`+ ${pid} ${start}\n`);
  }

  /** A worker exited. Removed by pid and start time: a later worker given the same pid stays listed. */
  remove(pid: number | undefined): void {
    if (pid === undefined) return;
    const start = this.#guarded.get(pid);
    if (start === undefined) return;
    this.#guarded.delete(pid);
    this.#write(`- ${pid} ${start}\n`);
  }

  /** The supervisor stopped: the guard exits, killing nothing that was removed. */
  close(): void {
    this.#closed = true; // a start scheduled already does nothing
    this.#child?.stdin?.end();
  }

  #write(line: string): void {
    if (this.#closed || this.#child === null) return;
    if (this.#child) {
      const stdin = this.#child.stdin;
      if (stdin && !stdin.destroyed && stdin.writable) stdin.write(line);
      return;
    }
    // Not running yet: the guard is told the whole list when it starts. The first start waits for the forks of
    // this turn to be done: spawning a shell holds the primary 3-8 ms, which would come between the first
    // worker's fork and the next ones'.
    this.#starting ??= setTimeout(() => this.#start(), 0);
  }

  #start(): void {
    this.#starting = undefined;
    if (this.#closed || this.#child !== undefined) return;
    const child = this.#spawn();
    if (!child) return;
    this.#child = child;
    this.#startedAt = performance.now();
    if (this.#guarded.size > 0) this.#write([...this.#guarded].map(([pid, start]) => `+ ${pid} ${start}\n`).join(''));
  }

  /** It went while this process lives: started again, told the workers listed by then. */
  #lost(code: number | null, signal: NodeJS.Signals | null): void {
    this.#losses = performance.now() - this.#startedAt >= stableAfterMs ? 1 : this.#losses + 1;
    const restartInMs = this.#restartLater();
    this.#log.warn({ event: 'orphan_guard_lost', code, signal, restartInMs }, 'the guard for the workers exited: starting it again');
  }

  /**
   * /bin/sh could not start. Missing or not allowed, or at the first start: no guard from now on. Anything else
   * while restarting (EAGAIN, ENOMEM: the pressure that may have ended the last one) is tried again, later.
   */
  #failed(error: unknown): void {
    const code = (error as NodeJS.ErrnoException | null)?.code;
    if (this.#losses === 0 || code === 'ENOENT' || code === 'EACCES') {
      this.#child = null;
      this.#log.warn({ event: 'orphan_guard_unavailable', err: error }, 'no guard for the workers should this process die: /bin/sh could not start');
      return;
    }
    this.#losses += 1;
    const restartInMs = this.#restartLater();
    this.#log.warn({ event: 'orphan_guard_unavailable', err: error, restartInMs }, 'the guard for the workers could not start again: trying later');
  }

  /** Schedules the next start: at once after the first loss in a row, then 100 ms doubling to 30 s. */
  #restartLater(): number {
    this.#child = undefined;
    const restartInMs = this.#losses <= 1 ? 0 : Math.min(maxRestartDelayMs, firstRestartDelayMs * 2 ** (this.#losses - 2));
    this.#starting = setTimeout(() => this.#start(), restartInMs).unref();
    return restartInMs;
  }

  #spawn(): ChildProcess | undefined {
    let child: ChildProcess;
    try {
      // Nothing of the primary's environment (its DATABASE_URL, say): the script uses the shell's builtins only.
      child = spawn('/bin/sh', ['-c', script], { stdio: ['pipe', 'ignore', 'ignore'], env: { PATH: '/usr/bin:/bin' }, cwd: '/' });
    } catch (error) {
      this.#failed(error);
      return undefined;
    }
    child.on('error', (error) => {
      if (this.#closed || this.#child !== child) return;
      this.#failed(error);
    });
    // A write after the guard went (killed on its own): its exit is what is reported.
    child.stdin?.on('error', () => {});
    child.on('exit', (code, signal) => {
      if (this.#closed || this.#child !== child) return;
      this.#lost(code, signal);
    });
    // Neither holds the primary's event loop open: the guard lives as long as the primary, not the other way.
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    this.#log[this.#losses > 0 ? 'info' : 'debug']({ event: 'orphan_guard_started', guardPid: child.pid, workers: this.#guarded.size }, this.#losses > 0 ? 'guard for the workers started again' : 'guard for the workers started');
    return child;
  }
}
