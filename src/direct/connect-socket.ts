import { connect, type Socket } from 'node:net';

/** Connects to a Unix socket: the socket, or the error that refused it (ECONNREFUSED: nothing listens there). */
export function connectSocket(path: string): Promise<{ socket: Socket } | { error: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const onError = (error: NodeJS.ErrnoException) => resolve({ error });
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve({ socket });
    });
  });
}
