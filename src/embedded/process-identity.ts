import { readFileSync } from 'node:fs';
import { processStartTime } from '../process-alive.js';

/**
 * What tells a process from a later one that got the same pid (after a reboot, or a container restart, where
 * pids repeat): on Linux, the boot id and the process's start time in clock ticks after boot (field 22 of
 * /proc/<pid>/stat). Undefined on other platforms and for a process that is gone.
 */
export function processIdentity(pid: number): string | undefined {
  const startTime = processStartTime(pid);
  if (startTime === undefined) return undefined;
  try {
    return `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}/${startTime}`;
  } catch {
    return undefined;
  }
}
