/** Processes: resident memory from /proc, child pids, and stopping a process tree. */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

/** VmRSS of a process in bytes, or null when it is gone. */
export function rssBytes(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Unique set size of a process in bytes (Private_Clean + Private_Dirty), or null when it is gone: the memory that
 * would be freed if it exited. VmRSS also counts every page of the node binary this process touched, which all
 * node processes share (on Node 22 and 24, TurboFan's code alone adds 6–7 MB to a worker's VmRSS).
 */
export function ussBytes(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text)?.[1] ?? 0);
    return (field('Private_Clean') + field('Private_Dirty')) * 1024;
  } catch {
    return null;
  }
}

/**
 * Proportional set size of a process and all its descendants, in bytes: each page shared by n processes (the
 * node binary, the libraries) counted 1/n in each, so the sum is the memory the tree really holds. VmRSS counts
 * a shared page in full in every process, so adding the RSS of a primary and four workers counts the node
 * binary five times.
 */
export function treePssBytes(pid) {
  let total = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const m = /^Pss:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // gone
    }
  }
  return total;
}

/** Direct children of a process (all its threads), from /proc. */
export function childPids(pid) {
  const out = [];
  try {
    for (const tid of readdirSafe(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return [...new Set(out)];
}

/** A process's command line, its arguments joined by spaces ('' once it is gone). */
export function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

function readdirSafe(path) {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}
/** Every descendant pid, deepest last. */
export function descendants(pid) {
  const out = [];
  const queue = [pid];
  while (queue.length > 0) {
    const kids = childPids(queue.shift());
    out.push(...kids);
    queue.push(...kids);
  }
  return out;
}

export function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Stops a child process and everything it forked: `signal` first (null: it was asked another way), SIGKILL after `graceMs`, then SIGKILL for
 * any descendant left behind.
 */
export async function stopTree(child, { signal = 'SIGTERM', graceMs = 10_000 } = {}) {
  if (!child?.pid) return;
  const tree = descendants(child.pid);
  if (child.exitCode === null && child.signalCode === null) {
    if (signal) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited(child);
    clearTimeout(timer);
  }
  const deadline = Date.now() + 2_000;
  for (const pid of [...tree, ...descendants(child.pid)]) {
    while (isAlive(pid) && Date.now() < deadline) await delay(20);
    if (isAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
}
