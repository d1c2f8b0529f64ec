/**
 * A long-running CLI command (`status --watch`), either in a real pseudo-terminal through util-linux
 * `script` (stdout is a TTY; writing Ctrl-C, \x03, makes the terminal's line discipline send SIGINT, as a
 * keyboard does) or on plain pipes (interrupted by a SIGINT to the process). A leak guard fails a test that
 * leaves one running (and kills it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, expect } from 'vitest';
import { binPath } from './processes.js';

const live = new Set<ChildProcess>();

export class CliSession {
  #stdout = '';
  #stderr = '';
  readonly exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly terminal: boolean,
  ) {
    live.add(child);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.#stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.#stderr += chunk));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        live.delete(child);
        resolve(code);
      });
    });
  }

  /** `prefork <args>` in a terminal; `script -e` exits with the command's own exit code. */
  static inTerminal(args: string[], env: NodeJS.ProcessEnv = {}): CliSession {
    const command = ['exec', process.execPath, binPath, ...args].map(shellQuote).join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    return new CliSession(child, true);
  }

  /** `prefork <args>` with stdout and stderr on pipes. */
  static piped(args: string[], env: NodeJS.ProcessEnv = {}): CliSession {
    const child = spawn(process.execPath, [binPath, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    return new CliSession(child, false);
  }

  /** Everything written so far (in a terminal: all the terminal showed, escapes and stderr included). */
  stdout(): string {
    return this.#stdout;
  }

  stderr(): string {
    return this.#stderr;
  }

  /** Ctrl-C: typed at the terminal, or a SIGINT to the process. */
  interrupt(): void {
    if (this.terminal) this.child.stdin!.write('\x03');
    else this.child.kill('SIGINT');
  }
}

function shellQuote(s: string): string {
  return /^[\w./:=@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

export function useCliSessionLeakGuard(): void {
  afterEach(() => {
    const leaked = [...live].filter((c) => c.exitCode === null && c.signalCode === null);
    for (const c of leaked) c.kill('SIGKILL');
    live.clear();
    expect(leaked.map((c) => c.pid), 'CLI sessions left running by the test').toEqual([]);
  });
}
