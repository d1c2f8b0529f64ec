import { execFile, spawn } from 'node:child_process';

/**
 * Making the server die with its parent. A plain child postgres outlives a SIGKILLed parent and its
 * postmaster.pid then blocks the next start. On Linux the server is exec'd through `setpriv --pdeathsig`, so
 * the kernel sends it SIGQUIT (immediate shutdown) when the spawning thread dies; elsewhere a small detached
 * watchdog process polls for the parent and does the same.
 */

const SETPRIV = '/usr/bin/setpriv';
const DEATH_SIGNAL = 'SIGQUIT';

export interface GuardedCommand {
  readonly command: string;
  readonly args: readonly string[];
  /** Call with the server's pid once it is spawned; returns what undoes the guard (kills the watchdog). */
  readonly guard: (serverPid: number) => () => void;
}

let setprivSupport: Promise<boolean> | undefined;

function hasSetprivPdeathsig(): Promise<boolean> {
  if (process.platform !== 'linux') return Promise.resolve(false);
  setprivSupport ??= new Promise((resolve) => {
    execFile(SETPRIV, ['--help'], (error, stdout) => resolve(!error && stdout.includes('--pdeathsig')));
  });
  return setprivSupport;
}

export async function guardAgainstParentDeath(command: string, args: readonly string[]): Promise<GuardedCommand> {
  if (await hasSetprivPdeathsig()) {
    return { command: SETPRIV, args: ['--pdeathsig', DEATH_SIGNAL, '--', command, ...args], guard: () => () => {} };
  }
  return { command, args, guard: startWatchdog };
}

// Windows has no SIGQUIT; there any signal terminates the process.
const WATCHDOG_SIGNAL = process.platform === 'win32' ? 'SIGTERM' : DEATH_SIGNAL;

const WATCHDOG_SOURCE = `
const [parent, server] = process.argv.slice(1).map(Number);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
setInterval(() => {
  if (!alive(server)) process.exit(0);
  if (!alive(parent)) { try { process.kill(server, '${WATCHDOG_SIGNAL}'); } catch {} process.exit(0); }
}, 250);
`;

function startWatchdog(serverPid: number): () => void {
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG_SOURCE, String(process.pid), String(serverPid)], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.on('error', () => {}); // best effort: without it the server just lacks the guard
  watchdog.unref();
  return () => {
    watchdog.kill();
  };
}
