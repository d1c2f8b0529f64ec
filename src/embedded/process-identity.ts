import { readFileSync } from 'node:fs';

/**
 * What tells a process from a later one that got the same pid (after a reboot, or a container restart, where
 * pids repeat): on Linux, the boot id and the process's start time in clock ticks after boot (field 22 of
 * /proc/<pid>/stat). Undefined on other platforms and for a process that is gone.
 */
export function processIdentity(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may itself contain ") ", so count from the last one; state is field 3.
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return startTime ? `${bootId}/${startTime}` : undefined;
  } catch {
    return undefined;
  }
}
