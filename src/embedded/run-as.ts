import { lchown, lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';

/** The unprivileged account that PostgreSQL runs as when we are root (PostgreSQL refuses to run as root). */
export interface RunAs {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const NOBODY: RunAs = { name: 'nobody', uid: 65534, gid: 65534 };

export const READ = 0o4;
export const EXECUTE = 0o1;

/** `nobody` from /etc/passwd when this process is root; undefined when PostgreSQL can run as ourselves. */
export async function unprivilegedUser(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name === NOBODY.name && uid && gid) return { name, uid: Number(uid), gid: Number(gid) };
  }
  return NOBODY;
}

/**
 * Whether `user` can reach `target` (search permission on every ancestor directory) and has `bits` on it.
 * Judged from mode bits only, with the primary group only: spawning with a uid/gid clears supplementary groups.
 */
export async function isReachableBy(user: RunAs, target: string, bits: number): Promise<boolean> {
  const resolved = await realpath(target).catch(() => undefined);
  if (resolved === undefined) return false;
  for (let dir = path.dirname(resolved); ; dir = path.dirname(dir)) {
    if (!(await permits(user, dir, EXECUTE))) return false;
    if (dir === path.dirname(dir)) break;
  }
  return permits(user, resolved, bits);
}

async function permits(user: RunAs, file: string, bits: number): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  if (info === undefined) return false;
  const shift = info.uid === user.uid ? 6 : info.gid === user.gid ? 3 : 0;
  return ((info.mode >> shift) & bits) === bits;
}

/** Gives `dir` and everything below it to `user` (a no-op for entries it already owns). */
export async function chownTree(dir: string, user: RunAs): Promise<void> {
  const info = await lstat(dir);
  if (info.uid !== user.uid || info.gid !== user.gid) await lchown(dir, user.uid, user.gid);
  if (!info.isDirectory()) return;
  for (const entry of await readdir(dir)) await chownTree(path.join(dir, entry), user);
}
