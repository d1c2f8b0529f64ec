/**
 * A peer's workers in their own process (as prefork's are): a runner script forked with an IPC channel. It
 * sends {type: 'ready'} once it takes jobs, stops on {type: 'stop'}, and exits if the harness goes away.
 */
import { fork } from 'node:child_process';
import { stopTree } from './proc.js';

export async function startPeer(defer, script, config, { timeoutMs = 60_000 } = {}) {
  const spawnedAt = performance.now();
  const child = fork(script, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c) => (stderr = (stderr + c).slice(-4_000)));
  const stop = async () => {
    if (child.connected) child.send({ type: 'stop' });
    await stopTree(child, { signal: null, graceMs: 10_000 });
  };
  defer(`peer ${script}`, stop);
  const message = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    child.on('message', (m) => {
      if (m?.type === 'ready') {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code ?? signal}) before it was ready: ${stderr.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
  return { child, pid: child.pid, startMs: performance.now() - spawnedAt, ready: message, stop, stderr: () => stderr };
}

/** Runner side: report ready, and stop cleanly on request or when the harness disappears. */
export function serveRunner(stopFn) {
  let stopping = false;
  const stop = async (code) => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(code), 8_000);
    force.unref();
    try {
      await stopFn();
    } finally {
      process.exit(code);
    }
  };
  process.on('message', (m) => {
    if (m?.type === 'stop') void stop(0);
  });
  process.on('disconnect', () => void stop(1));
  process.on('SIGTERM', () => void stop(0));
  process.on('SIGINT', () => {}); // Ctrl-C reaches the whole group: the harness decides when this stops
  process.send({ type: 'ready', pid: process.pid });
}
