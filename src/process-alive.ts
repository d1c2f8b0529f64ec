import { readFileSync, readlinkSync } from 'node:fs';

/**
 * Whether a process with this pid is running. EPERM means it exists but belongs to someone else. A zombie
 * (dead, not yet reaped: an orphan waits for init to reap it) counts as gone; Linux shows that in /proc.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  if (process.platform !== 'linux') return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Format: "pid (comm) state ...", and comm may itself contain ") ".
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

/**
 * The process's start time in clock ticks after boot (field 22 of /proc/PID/stat): with the pid, what tells it
 * from a later process given the same pid. Undefined on other platforms and for a process that is gone.
 */
export function processStartTime(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may itself contain ") ", so count from the last one; state is field 3.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3] || undefined;
  } catch {
    return undefined;
  }
}

let scope: string | null | undefined;

/**
 * Where this process's pids mean something: the machine's boot id and this PID namespace (Linux). Two processes
 * with the same scope see the same pids; a host name does not tell that (containers on the host's network share
 * the node's name, each with its own pids). Null where it cannot be read (another OS).
 */
export function pidScope(): string | null {
  if (scope === undefined) {
    try {
      scope = `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}/${readlinkSync('/proc/self/ns/pid')}`;
    } catch {
      scope = null;
    }
  }
  return scope;
}
