/**
 * The supervisor's end of direct submission (src/direct/protocol.ts): a Unix socket in a directory only this
 * user can enter, named after the supervisor. Requests go to the supervisor's handler; replies go back on the
 * connection they came from.
 */
import { lstatSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { connectSocket } from '../direct/connect-socket.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { lineReader, parseSubmit, type DirectReply, type SubmitRequest } from '../direct/protocol.js';

export class DirectConnection {
  #open = true;

  constructor(private readonly socket: Socket) {
    socket.once('close', () => {
      this.#open = false;
    });
  }

  /** The sender is still connected (what is sent may reach it). */
  get open(): boolean {
    return this.#open;
  }

  send(reply: DirectReply): void {
    if (this.#open) this.socket.write(`${JSON.stringify(reply)}\n`);
  }
}

export type SubmitHandler = (request: SubmitRequest, connection: DirectConnection) => void;

/**
 * The directory for the sockets: `$TMPDIR/prefork-<uid>`, created mode 0700. Null (no direct submission) when it
 * cannot be made or is not a directory this user owns.
 */
export function socketDirectory(): string | null {
  const uid = process.getuid?.();
  const dir = join(tmpdir(), `prefork-${uid ?? 'user'}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) return null;
    return dir;
  } catch {
    return null;
  }
}

/**
 * Removes the sockets of supervisors that died without closing theirs (SIGKILL): nothing answers on them.
 * Best effort, in the background.
 */
export async function removeStaleSockets(dir: string, keep: string): Promise<number> {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.sock'));
  } catch {
    return 0;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (path === keep) continue;
    const connected = await connectSocket(path);
    if ('socket' in connected) connected.socket.destroy();
    if (!('error' in connected) || connected.error.code !== 'ECONNREFUSED') continue;
    try {
      unlinkSync(path);
      removed += 1;
    } catch {
      // Gone already, or not ours to remove.
    }
  }
  return removed;
}

export class SubmitServer {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(
    readonly path: string,
    private readonly handler: SubmitHandler,
    private readonly log: Logger,
  ) {
    this.#server = createServer((socket) => this.#accept(socket));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.path, () => {
        this.#server.off('error', reject);
        this.#server.on('error', (error) => this.log.warn({ event: 'submit_socket_error', err: error }, 'direct submission socket failed'));
        resolve();
      });
    });
  }

  /** No new connections; those open stay until `close()`. */
  stopAccepting(): void {
    if (this.#server.listening) this.#server.close();
  }

  /** Ends every connection (the socket file goes with the server). */
  close(): void {
    this.stopAccepting();
    for (const socket of this.#sockets) socket.end();
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.setNoDelay?.(true);
    const connection = new DirectConnection(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {});
    socket.on(
      'data',
      lineReader(
        (line) => {
          const parsed = parseSubmit(line);
          if ('error' in parsed) connection.send({ op: 'refused', ref: parsed.ref, error: { code: 'BAD_REQUEST', message: parsed.error } });
          else this.handler(parsed.request, connection);
        },
        () => {
          connection.send({ op: 'refused', ref: 0, error: { code: 'BAD_REQUEST', message: 'line too long' } });
          socket.end();
        },
      ),
    );
  }
}
