import { readFileSync, rmSync } from 'node:fs';
import { link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { isProcessAlive } from '../process-alive.js';
import { processIdentity } from './process-identity.js';

/**
 * One supervisor at a time per state directory (`.prefork/`): held from before the embedded server starts
 * (two first starts must not both run initdb) until after it stopped. The file names its holder; a holder
 * that is gone, or whose pid now belongs to another process, leaves a stale lock that the next start takes over.
 */

export const LOCK_FILE_NAME = 'supervisor.lock';

export interface LockHolder {
  readonly pid: number;
  /** See processIdentity; absent where the platform cannot tell. */
  readonly identity?: string | undefined;
  readonly dataDir: string;
  /** ISO 8601. */
  readonly since: string;
}

export class LockHeldError extends Error {
  constructor(
    readonly file: string,
    readonly holder: LockHolder,
  ) {
    super(`${file} is held by process ${holder.pid} (since ${holder.since}) for ${holder.dataDir}`);
    this.name = 'LockHeldError';
  }
}

export interface SupervisorLock {
  readonly file: string;
  release(): Promise<void>;
  /** For the last moments of a process that is about to exit. */
  releaseSync(): void;
}

export async function acquireSupervisorLock(file: string, dataDir: string): Promise<SupervisorLock> {
  await mkdir(path.dirname(file), { recursive: true });
  const mine: LockHolder = { pid: process.pid, identity: processIdentity(process.pid), dataDir, since: new Date().toISOString() };
  const text = `${JSON.stringify(mine)}\n`;
  // Written whole, then linked into place: a reader never sees a half-written lock, and link fails if one exists.
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode: 0o600 });
  try {
    for (let attempt = 1; ; attempt++) {
      if (await place(temporary, file, text)) break;
      const stale = await readFile(file, 'utf8').catch(() => undefined);
      if (stale === undefined) continue;
      const holder = parseHolder(stale);
      if (holder && isHeld(holder)) throw new LockHeldError(file, holder);
      if (attempt > 50) throw new Error(`could not take over the stale lock ${file}`);
      await removeStale(file, stale);
    }
  } finally {
    await rm(temporary, { force: true });
  }
  const ours = () => {
    try {
      return (JSON.parse(readFileSync(file, 'utf8')) as LockHolder).pid === process.pid;
    } catch {
      return false;
    }
  };
  return {
    file,
    release: async () => {
      if (ours()) await rm(file, { force: true });
    },
    releaseSync: () => {
      if (ours()) rmSync(file, { force: true });
    },
  };
}

/**
 * Removes the lock file if it still holds `stale`. Two starts that both found the same stale lock must not
 * both take it over (the second would remove the lock the first had just placed): the removal happens under
 * a takeover file that one process at a time creates, and only while the lock is still the stale one.
 */
async function removeStale(file: string, stale: string): Promise<void> {
  const takeover = `${file}.takeover`;
  try {
    await writeFile(takeover, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Another start is taking over: it takes milliseconds. One left by a process that died in it is old.
    const age = await stat(takeover).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > takeoverStaleMs) await rm(takeover, { force: true });
    else await sleep(5 + Math.random() * 10);
    return;
  }
  try {
    const now = await readFile(file, 'utf8').catch(() => undefined);
    if (now === stale) await rm(file, { force: true });
  } finally {
    await rm(takeover, { force: true });
  }
}

const takeoverStaleMs = 10_000;

/** The holder named in the lock file; null when there is none or it cannot be read as one (a stale leftover). */
export async function readHolder(file: string): Promise<LockHolder | null> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return null;
  return parseHolder(text);
}

function parseHolder(text: string): LockHolder | null {
  try {
    const holder = JSON.parse(text) as Partial<LockHolder>;
    if (!Number.isInteger(holder.pid) || typeof holder.dataDir !== 'string' || typeof holder.since !== 'string') return null;
    return holder as LockHolder;
  } catch {
    return null;
  }
}

/** Whether the process named in the lock still runs (a pid reused by another process does not count). */
export function isHeld(holder: LockHolder): boolean {
  if (holder.pid === process.pid || !isProcessAlive(holder.pid)) return false;
  if (holder.identity === undefined) return true;
  const now = processIdentity(holder.pid);
  return now === undefined || now === holder.identity;
}

async function place(temporary: string, file: string, text: string): Promise<boolean> {
  try {
    await link(temporary, file);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw error;
  }
  // A file system without hard links: exclusive create, then write.
  try {
    await writeFile(file, text, { flag: 'wx', mode: 0o600 });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}
