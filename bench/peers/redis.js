/** The machine's Redis for BullMQ: checked, and started when it is down. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connect } from 'node:net';
import { progress } from '../lib/progress.js';

export const redisConnection = { host: '127.0.0.1', port: 6379 };

/** PING over a plain socket: no client library needed to know whether Redis is there. */
function ping() {
  return new Promise((resolve) => {
    const socket = connect(redisConnection);
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

/** null when Redis answers (started here if needed), else why BullMQ cannot run. */
export async function ensureRedis() {
  if (await ping()) return null;
  progress('Redis at 127.0.0.1:6379 does not answer: starting redis-server');
  try {
    await promisify(execFile)('redis-server', [
      '--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', '6379', '--save', '', '--appendonly', 'no',
      '--dir', '/var/lib/redis', '--logfile', '/var/log/redis/ci.log',
    ]);
  } catch (error) {
    return `Redis is down and redis-server could not start: ${error.message.split('\n')[0]}`;
  }
  for (let i = 0; i < 50; i++) {
    if (await ping()) return null;
    await new Promise((r) => setTimeout(r, 100));
  }
  return 'Redis was started but does not answer on 127.0.0.1:6379';
}
